import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { fileCycles, layeringViolations, sourceFiles } from '../support/layering.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** A throwaway project tree: path → source. */
const project = (files: Record<string, string>): string => {
  const dir = mkdtempSync(join(tmpdir(), 'layering-'))
  for (const [path, src] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), src)
  }
  return dir
}

describe('the layering of ARCHITECTURE.md', () => {
  it('walks the project', () => {
    const files = sourceFiles(root)
    for (const f of ['domain/decider.ts', 'http/errors.ts', 'http/tenant-auth.ts', 'commands/pipeline.ts', 'bin/app.ts']) {
      expect(files).toContain(f)
    }
  })

  it('no import breaks the rules (domain imports nothing of ours, adapters only domain, read-api never commands, commands never read-api or projections, projections never commands or http, http never a layer above it)', () => {
    expect(layeringViolations(root)).toEqual([])
  })

  it('no files import one another in a circle', () => {
    expect(fileCycles(root)).toEqual([])
  })
})

describe('the check itself', () => {
  it('finds an import a rule forbids, whatever its form', () => {
    const dir = project({
      'domain/a.ts': '',
      'commands/x.ts': "import { a } from '../domain/a.ts'\n",
      'read-api/q.ts': "import type { X } from '../commands/x.ts'\nexport const y = import('../commands/x.ts')\n",
      'http/h.ts': "export { a } from '../projections/p.ts'\n",
      'projections/p.ts': "import { a } from '../domain/a.ts'\n",
    })
    expect(layeringViolations(dir).sort()).toEqual(['http/h.ts -> projections/p.ts', 'read-api/q.ts -> commands/x.ts'])
  })

  it('finds a cycle of files, through a type import too', () => {
    const dir = project({
      'http/a.ts': "import type { B } from './b.ts'\n",
      'http/b.ts': "import { c } from './c.ts'\n",
      'http/c.ts': "import type { A } from './a.ts'\n",
      'http/d.ts': "import { a } from './a.ts'\n",
    })
    expect(fileCycles(dir)).toEqual([['http/a.ts', 'http/b.ts', 'http/c.ts', 'http/a.ts']])
  })
})
