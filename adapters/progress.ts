/**
 * Progress on stderr for long-running tools: a bar redrawn in place on a terminal, a plain line every few
 * seconds otherwise (CI logs). Never on stdout, which carries the tool's output.
 */
export type ProgressLine = {
  readonly label: string
  /** Units done in this run, for the rate. */
  readonly done: number
  /** 0..1 when known: drives the bar and the ETA. */
  readonly fraction?: number | null
  readonly unit?: string
  readonly extra?: string
}

const fmt = new Intl.NumberFormat('en-US')

export const formatCount = (n: number): string => fmt.format(Math.round(n))

export const formatDuration = (ms: number): string => {
  if (!Number.isFinite(ms) || ms < 0) return '?'
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`
}

export class Progress {
  private readonly started = Date.now()
  private lastPlain = 0
  private drawn = false
  private readonly stream: NodeJS.WriteStream
  private readonly quiet: boolean
  constructor(options: { stream?: NodeJS.WriteStream; quiet?: boolean } = {}) {
    this.stream = options.stream ?? process.stderr
    this.quiet = options.quiet ?? false
  }

  update(p: ProgressLine, force = false): void {
    if (this.quiet) return
    const elapsed = Date.now() - this.started
    const rate = elapsed > 0 ? (p.done * 1000) / elapsed : 0
    const unit = p.unit ?? 'events'
    const fraction = p.fraction === null || p.fraction === undefined ? null : Math.min(1, Math.max(0, p.fraction))
    const eta = fraction && fraction > 0 ? (elapsed / fraction) * (1 - fraction) : Number.NaN
    const parts = [
      p.label,
      fraction === null ? '' : `${bar(fraction)} ${(fraction * 100).toFixed(1).padStart(5)}%`,
      `${formatCount(p.done)} ${unit}`,
      `${formatCount(rate)} ${unit}/s`,
      fraction === null ? `elapsed ${formatDuration(elapsed)}` : `ETA ${formatDuration(eta)}`,
      p.extra ?? '',
    ].filter(Boolean)
    const line = parts.join('  ')
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${line}`)
      this.drawn = true
    } else if (force || Date.now() - this.lastPlain >= 2_000) {
      this.lastPlain = Date.now()
      this.stream.write(`${line}\n`)
    }
  }

  /** Ends the bar's line (on a terminal), so what follows starts on its own line. */
  done(): void {
    if (this.drawn) this.stream.write('\n')
    this.drawn = false
  }
}

const bar = (fraction: number, width = 24): string => {
  const full = Math.round(fraction * width)
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`
}
