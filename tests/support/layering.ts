import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'

/*
 * The layering rules of ARCHITECTURE.md ("Folders", "Never:"), checked over the project's own relative imports
 * (static imports, re-exports, dynamic imports and `import('…')` types alike), and the file cycles among them.
 */

/** For each top-level folder, the folders it must never import. */
export const NEVER: Readonly<Record<string, readonly string[]>> = {
  domain: ['adapters', 'commands', 'projections', 'read-api', 'realtime', 'processors', 'http', 'migrations'],
  adapters: ['commands', 'projections', 'read-api', 'realtime', 'processors', 'http'],
  'read-api': ['commands', 'processors'],
  commands: ['read-api', 'projections', 'processors'],
  projections: ['commands', 'read-api', 'http', 'processors'],
  realtime: ['commands', 'read-api', 'processors'],
  http: ['commands', 'read-api', 'projections', 'realtime', 'processors'],
}

/** The folders whose files are ours: every layer, and what composes or tests them. */
export const OURS = [...Object.keys(NEVER), 'migrations', 'bin', 'bench', 'tests'] as const

const SOURCE = /\.(ts|mts|js|mjs)$/
const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g

function walk(root: string, dir: string, into: string[]): void {
  let names: string[]
  try {
    names = readdirSync(join(root, dir))
  } catch {
    return
  }
  for (const name of names) {
    if (name === 'node_modules' || name.startsWith('.')) continue
    const path = join(dir, name)
    if (statSync(join(root, path)).isDirectory()) walk(root, path, into)
    else if (SOURCE.test(name)) into.push(path)
  }
}

/** Every file of ours under `root`, as a path relative to it. */
export function sourceFiles(root: string, folders: readonly string[] = OURS): string[] {
  const files: string[] = []
  for (const folder of folders) walk(root, folder, files)
  return files.sort()
}

/** The relative imports of one file, resolved to paths relative to the root. */
export function importsOf(root: string, file: string): string[] {
  const src = readFileSync(join(root, file), 'utf8')
  const found = new Set<string>()
  for (const m of src.matchAll(IMPORT)) {
    const spec = (m[1] ?? m[2])!
    found.add(relative('.', normalize(join(dirname(file), spec))))
  }
  return [...found]
}

/** The imports that break the rules, as `from -> to`. */
export function layeringViolations(root: string): string[] {
  const broken: string[] = []
  for (const file of sourceFiles(root, Object.keys(NEVER))) {
    const layer = file.split('/')[0]!
    for (const target of importsOf(root, file)) {
      if (NEVER[layer]!.includes(target.split('/')[0]!)) broken.push(`${file} -> ${target}`)
    }
  }
  return broken
}

/** Every cycle of files that import one another (each reported once, as the files in order, the first again at the end). */
export function fileCycles(root: string): string[][] {
  const files = sourceFiles(root)
  const known = new Set(files)
  const edges = new Map(files.map((f) => [f, importsOf(root, f).filter((t) => known.has(t))]))
  // Tarjan's strongly connected components: a component of more than one file, or a file importing itself, is a cycle.
  let index = 0
  const indexOf = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (v: string): void => {
    indexOf.set(v, index)
    low.set(v, index++)
    stack.push(v)
    onStack.add(v)
    for (const w of edges.get(v)!) {
      if (!indexOf.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!))
    }
    if (low.get(v) === indexOf.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || edges.get(v)!.includes(v)) cycles.push([...component.reverse(), component[0]!])
    }
  }
  for (const f of files) if (!indexOf.has(f)) visit(f)
  return cycles
}
