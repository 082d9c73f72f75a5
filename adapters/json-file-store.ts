import { randomBytes } from 'node:crypto'
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Small helpers to keep secret material (key sets, cookie keys) in JSON files under the data
 * directory: created once with mode 0600, written atomically, never half-read.
 */

const isNotFound = (e: unknown): boolean => (e as NodeJS.ErrnoException | null)?.code === 'ENOENT'
const isExists = (e: unknown): boolean => (e as NodeJS.ErrnoException | null)?.code === 'EEXIST'

/** Reads and validates a JSON file; undefined when it does not exist. */
export async function readJsonFile<T>(path: string, parse: (value: unknown) => T): Promise<T | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    if (isNotFound(e)) return undefined
    throw e
  }
  try {
    return parse(JSON.parse(text))
  } catch (cause) {
    throw new Error(`${path}: invalid content (${(cause as Error).message})`, { cause })
  }
}

async function writeTemp(path: string, value: unknown): Promise<string> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600, flag: 'wx' })
  return tmp
}

/** Replaces the file atomically (write a temporary file, then rename over). */
export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  const tmp = await writeTemp(path, value)
  try {
    await rename(tmp, path)
  } catch (e) {
    await unlink(tmp).catch(() => {})
    throw e
  }
}

/**
 * Returns the file's content, creating it with `create()` when absent. Two processes starting
 * together agree on one value: the file is published with link(2), which fails if it exists,
 * and the loser reads the winner's file.
 */
export async function loadOrCreateJsonFile<T>(path: string, parse: (value: unknown) => T, create: () => Promise<T>): Promise<T> {
  const existing = await readJsonFile(path, parse)
  if (existing !== undefined) return existing
  const value = await create()
  const tmp = await writeTemp(path, value)
  try {
    await link(tmp, path)
  } catch (e) {
    if (!isExists(e)) throw e
    const winner = await readJsonFile(path, parse)
    if (winner === undefined) throw e
    return winner
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return parse(JSON.parse(JSON.stringify(value)))
}
