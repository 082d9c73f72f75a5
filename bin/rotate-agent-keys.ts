// node bin/rotate-agent-keys.ts [--keep N]
// Rotates the keys that sign agent tokens (DATA_DIR/auth/agent-token-keys.json): a new key signs from now
// on; the previous ones keep verifying, so tokens already issued (15 minutes) stay valid. Running processes
// pick the new key up when they meet its kid; restart them within the token lifetime to sign with it.
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { rotateAgentKeySetFile } from '../adapters/agent-tokens.ts'
import { ConfigError, loadConfig } from '../adapters/config.ts'

try {
  const { values } = parseArgs({ options: { keep: { type: 'string', default: '2' } } })
  const keepPrevious = Number(values.keep)
  if (!Number.isInteger(keepPrevious) || keepPrevious < 1) throw new ConfigError('--keep is a whole number of at least 1')
  const config = loadConfig()
  const path = join(config.DATA_DIR, 'auth', 'agent-token-keys.json')
  const set = await rotateAgentKeySetFile(path, { keepPrevious })
  console.log(`${path}: signing with ${set.current.kid}; still verifying ${set.previous.map((k) => k.kid).join(', ') || 'none'}`)
} catch (e) {
  console.error(e instanceof Error ? e.message : e)
  process.exit(e instanceof ConfigError ? 2 : 1)
}
