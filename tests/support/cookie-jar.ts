import { request as httpRequest } from 'node:http'

/**
 * A minimal cookie jar for driving browser flows over HTTP in tests: honours Path, Max-Age/
 * Expires and deletion; one host. `fetch` follows no redirects, so every hop can be inspected.
 */
type Cookie = { name: string; value: string; path: string; expires: number | null }

export class CookieJar {
  readonly #cookies = new Map<string, Cookie>()
  /** The Host header to send (e.g. an org host `acme.localhost:3000` served on 127.0.0.1); fetch cannot set it. */
  readonly host: string | undefined

  constructor(options: { host?: string } = {}) {
    this.host = options.host
  }

  store(response: Response, requestUrl: string): void {
    const defaultPath = new URL(requestUrl).pathname.replace(/\/[^/]*$/, '') || '/'
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';').map((s) => s.trim())
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      let path = defaultPath
      let expires: number | null = null
      for (const attribute of attributes) {
        const [k = '', v = ''] = attribute.split('=')
        const key = k.toLowerCase()
        if (key === 'path') path = v || '/'
        if (key === 'max-age') expires = Date.now() + Number(v) * 1000
        if (key === 'expires' && expires === null) expires = Date.parse(v)
      }
      const id = `${name};${path}`
      if (expires !== null && expires <= Date.now()) this.#cookies.delete(id)
      else this.#cookies.set(id, { name, value, path, expires })
    }
  }

  header(url: string): string {
    const path = new URL(url).pathname
    const now = Date.now()
    return [...this.#cookies.values()]
      .filter(
        (c) =>
          (c.expires === null || c.expires > now) &&
          (path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)),
      )
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ')
  }

  names(): string[] {
    return [...this.#cookies.values()].map((c) => c.name)
  }

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    const cookie = this.header(url)
    if (cookie) headers.set('cookie', cookie)
    const response = this.host
      ? await fetchWithHost(url, this.host, { ...init, headers })
      : await fetch(url, { ...init, headers, redirect: 'manual' })
    this.store(response, url)
    return response
  }
}

/** The absolute target of a redirect response. */
export function location(response: Response, base: string): string {
  const value = response.headers.get('location')
  if (!value) throw new Error(`expected a redirect, got ${response.status}`)
  return new URL(value, base).href
}

/** fetch, but with this Host header (node:http; fetch ignores a Host header). Follows no redirects. */
export function fetchWithHost(url: string, host: string, init: RequestInit = {}): Promise<Response> {
  const u = new URL(url)
  const headers: Record<string, string> = { ...Object.fromEntries(new Headers(init.headers)), host }
  const body = init.body == null ? undefined : String(init.body)
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body))
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { hostname: u.hostname, port: u.port, path: u.pathname + u.search, method: init.method ?? 'GET', headers },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', reject)
        res.on('end', () => {
          const h = new Headers()
          for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!)
          const status = res.statusCode ?? 0
          resolve(new Response([101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks), { status, headers: h }))
        })
      },
    )
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}
