import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from 'node:crypto'
import type { PersonalDataRegistry, PersonalFields } from '../domain/personal-data.ts'
import type { DataKey, DataKeys } from './data-keys.ts'
import type { EventStore, NewEvent, RecordedEvent, Subscription } from './event-store.ts'

/**
 * A personal field at rest: AES-256-GCM under its subject's data key, with the event id and field name as
 * associated data, so a ciphertext cannot be moved to another event or field. An object where the domain has a
 * string: it never collides with a text someone wrote, so plaintext stored before encryption reads as it is.
 */
type Envelope = { readonly $pd: 1; readonly s: string; readonly iv: string; readonly ct: string }

const isEnvelope = (v: unknown): v is Envelope =>
  typeof v === 'object' && v !== null && (v as Envelope).$pd === 1 && typeof (v as Envelope).s === 'string'

/**
 * Each data key as a KeyObject, made once per key the data-key cache holds: given a Buffer, every cipher makes a
 * KeyObject of its own, most of what opening a field costs when every projector and processor reads every event.
 */
const keyObjects = new WeakMap<Buffer, KeyObject>()
const secretOf = (key: Buffer): KeyObject => {
  let k = keyObjects.get(key)
  if (!k) {
    k = createSecretKey(key)
    keyObjects.set(key, k)
  }
  return k
}

const associated = (eventId: string, field: string) => Buffer.from(`${eventId}\u0000${field}`, 'utf8')

function seal(key: Buffer, subject: string, eventId: string, field: string, text: string): Envelope {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', secretOf(key), iv)
  cipher.setAAD(associated(eventId, field))
  const ct = Buffer.concat([cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()])
  return { $pd: 1, s: subject, iv: iv.toString('base64'), ct: ct.toString('base64') }
}

function open(key: Buffer, eventId: string, field: string, envelope: Envelope): string {
  const data = Buffer.from(envelope.ct, 'base64')
  const decipher = createDecipheriv('aes-256-gcm', secretOf(key), Buffer.from(envelope.iv, 'base64'))
  decipher.setAAD(associated(eventId, field))
  decipher.setAuthTag(data.subarray(data.length - 16))
  return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8')
}

type Fields = PersonalFields<Record<string, unknown>>
type Data = Record<string, unknown>

/**
 * Crypto-shredding for every adapter: on append, the personal fields the registry declares are encrypted under
 * their subject's key; on every read they are decrypted, or read as the registry's placeholder once the subject
 * is erased (stored plaintext of an erased subject too). Appending an erasing event (user.erased) destroys the
 * subject's key first, so a crash in between leaves the key destroyed and the retried command records it.
 * Compose it under withUpcasting: upcasters see decrypted data.
 */
export function withPersonalData(store: EventStore, keys: DataKeys, registry: PersonalDataRegistry): EventStore {
  const declared = registry.fields as Readonly<Record<string, Fields | undefined>>
  const erasures = registry.erasures as Readonly<Record<string, ((data: unknown) => string) | undefined>>

  const personal = (e: NewEvent): Fields | undefined => {
    const fields = declared[e.type]
    return fields && typeof e.data === 'object' && e.data !== null ? fields : undefined
  }

  async function encrypt(events: readonly NewEvent[]): Promise<NewEvent[]> {
    for (const e of events) {
      const erased = erasures[e.type]?.(e.data)
      if (erased) await keys.destroy(erased)
    }
    const subjects = events.flatMap((e) => {
      const p = personal(e)
      return p ? [p.subject(e.data as Data, e.metadata.actor.id)] : []
    })
    if (subjects.length === 0) return [...events]
    const found = await keys.forWriting(subjects)
    return events.map((e) => {
      const p = personal(e)
      if (!p) return e
      const subject = p.subject(e.data as Data, e.metadata.actor.id)
      const key = found.get(subject) ?? null
      const data: Data = { ...(e.data as Data) }
      for (const [field, placeholder] of Object.entries(p.fields)) {
        const value = data[field]
        if (typeof value !== 'string') continue
        // An erased subject's later writes are stored erased: nothing of them lands in clear.
        data[field] = key ? seal(key, subject, e.id, field, value) : placeholder
      }
      return { ...e, data }
    })
  }

  async function decrypt(events: readonly RecordedEvent[]): Promise<RecordedEvent[]> {
    // Whoever reads an erasing event drops its copy of that key: projectors see erased data from then on.
    for (const e of events) {
      const erased = erasures[e.type]?.(e.data)
      if (erased) keys.forget(erased)
    }
    const subjects: string[] = []
    for (const e of events) {
      const p = personal(e)
      if (!p) continue
      for (const field of Object.keys(p.fields)) {
        const value = (e.data as Data)[field]
        if (isEnvelope(value)) subjects.push(value.s)
        else if (typeof value === 'string') subjects.push(p.subject(e.data as Data, e.metadata.actor.id))
      }
    }
    if (subjects.length === 0) return [...events]
    const found = await keys.forReading(subjects)
    return events.map((e) => {
      const p = personal(e)
      return p ? { ...e, data: readFields(e, p, found) } : e
    })
  }

  const decryptSubscription = (inner: Subscription): Subscription => ({
    close: () => inner.close(),
    async *[Symbol.asyncIterator]() {
      for await (const batch of inner) yield await decrypt(batch)
    },
  })

  return {
    append: async (stream, events, options) => store.append(stream, await encrypt(events), options),
    readStream: async (stream, options) => decrypt(await store.readStream(stream, options)),
    readAll: async (options) => decrypt(await store.readAll(options)),
    readTenant: async (tenantId, options) => decrypt(await store.readTenant(tenantId, options)),
    subscribeAll: (options) => decryptSubscription(store.subscribeAll(options)),
    headPosition: () => store.headPosition(),
    resolvePosition: (p) => store.resolvePosition(p),
    close: () => store.close(),
  }
}

function readFields(e: RecordedEvent, p: Fields, keys: ReadonlyMap<string, DataKey>): Data {
  const data: Data = { ...(e.data as Data) }
  for (const [field, placeholder] of Object.entries(p.fields)) {
    const value = data[field]
    if (isEnvelope(value)) {
      const key = keys.get(value.s)
      if (key === undefined) throw new Error(`event ${e.id}: ${field} is encrypted under a key ${value.s} never had`)
      data[field] = key === null ? placeholder : open(key, e.id, field, value)
    } else if (typeof value === 'string' && keys.get(p.subject(e.data as Data, e.metadata.actor.id)) === null) {
      data[field] = placeholder
    }
  }
  return data
}
