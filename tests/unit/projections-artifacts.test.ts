import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ArtifactEvent } from '../../domain/artifacts.ts'
import {
  type ArtifactRow,
  type ArtifactVersionRow,
  artifactRows,
  artifactsProjector,
  artifactVersionRows,
} from '../../projections/artifacts.ts'
import { type AnyRowModel, evolveTable, type Row } from '../../projections/rows.ts'
import { projectionSpec } from '../support/projection-spec.ts'

const t0 = '2026-12-02T10:00:00.000Z'
const t1 = '2026-12-02T11:00:00.000Z'
const t2 = '2026-12-02T12:00:00.000Z'

const subject = (artifactId: string, title = 'Fix', kind: 'patch' | 'report' | 'link' = 'report') => ({
  artifactId,
  roomId: 'room-1',
  taskId: null,
  kind,
  title,
})
const created = (artifactId: string, at = t0, content: string | null = 'v1'): ArtifactEvent => ({
  type: 'artifact.created',
  data: {
    ...subject(artifactId, 'Fix', content === null ? 'link' : 'report'),
    runId: 'run-1',
    content,
    fileId: null,
    url: content === null ? 'https://e.com' : null,
    createdBy: 'alice',
    createdByType: 'agent',
    at,
  },
})
const renamed = (artifactId: string, title: string, version: number, at: string): ArtifactEvent => ({
  type: 'artifact.updated',
  data: { ...subject(artifactId, title), version, updatedBy: 'bob', at },
})
const revised = (artifactId: string, version: number, content: string, at: string, title = 'Fix'): ArtifactEvent => ({
  type: 'artifact.updated',
  data: { ...subject(artifactId, title), version, content, updatedBy: 'bob', at },
})
const deleted = (artifactId: string, version: number, at = t2): ArtifactEvent => ({
  type: 'artifact.deleted',
  data: { ...subject(artifactId), version, deletedBy: 'alice', at },
})

const fix: ArtifactRow = {
  id: 'a1',
  kind: 'report',
  title: 'Fix',
  room_id: 'room-1',
  task_id: null,
  run_id: 'run-1',
  file_id: null,
  url: null,
  version: 1,
  created_by: 'alice',
  created_by_type: 'agent',
  created_at: t0,
  updated_at: t0,
}
const v = (artifact_id: string, version: number, content: string, at: string, by = 'bob'): ArtifactVersionRow => ({
  artifact_id,
  version,
  content,
  created_by: by,
  created_at: at,
})

const versions = (given: readonly ArtifactVersionRow[], ...events: ArtifactEvent[]) =>
  evolveTable(artifactVersionRows, given, events)

describe('artifacts read model', () => {
  const artifacts = projectionSpec(artifactRows)

  it('a created artifact is a row at version 1, without its content', () => artifacts.given([]).when(created('a1')).then([fix]))

  it('a rename keeps the version; new content moves it, and the row’s update time', () =>
    artifacts
      .given([fix])
      .when(renamed('a1', 'Better fix', 1, t1), revised('a1', 2, 'v2', t2, 'Better fix'))
      .then([{ ...fix, title: 'Better fix', version: 2, updated_at: t2 }]))

  it('a repeated creation keeps the first row', () =>
    artifacts
      .given([fix])
      .when(created('a1', t1, 'other'))
      .thenWrites({ upserts: [], deletes: [] }))

  it('a deletion removes the row; events about no row change nothing', () => {
    artifacts.given([fix]).when(deleted('a1', 1)).then([])
    artifacts
      .given([fix])
      .when(renamed('a9', 'Ghost', 1, t1), deleted('a9', 1))
      .then([fix])
  })

  it('each version’s text is a row: the first from the creation, the next from new content, none from a rename', () => {
    expect(versions([], created('a1'), renamed('a1', 'x', 1, t1), revised('a1', 2, 'v2', t2)).rows).toEqual([
      v('a1', 1, 'v1', t0, 'alice'),
      v('a1', 2, 'v2', t2),
    ])
  })

  it('a link or a file has no text', () => expect(versions([], created('a1', t0, null)).rows).toEqual([]))

  it('a deletion takes every version with it, and nothing of another artifact', () => {
    const given = [v('a1', 1, 'v1', t0, 'alice'), v('a1', 2, 'v2', t1), v('a2', 1, 'other', t0, 'alice')]
    const after = versions(given, deleted('a1', 2))
    expect(after.rows).toEqual([v('a2', 1, 'other', t0, 'alice')])
    expect(after.deletes).toHaveLength(2)
  })

  it('reads and writes both tables, for the three artifact events', () =>
    expect({ tables: artifactsProjector.tables, eventTypes: artifactsProjector.eventTypes }).toEqual({
      tables: ['artifacts', 'artifact_versions'],
      eventTypes: ['artifact.created', 'artifact.updated', 'artifact.deleted'],
    }))

  /** The table after the batch, applied in the batches `bounds` cut it into, each starting from the rows the last left. */
  const inBatches = <R extends Row>(model: AnyRowModel<ArtifactEvent, R>, batch: readonly ArtifactEvent[], bounds: number[]) => {
    let rows: R[] = []
    for (let i = 1; i < bounds.length; i++) rows = evolveTable(model, rows, batch.slice(bounds[i - 1], bounds[i])).rows
    return rows
  }

  /** Histories as the decider writes them: versions counted per artifact, nothing after a deletion. */
  const histories = fc
    .array(
      fc.record({
        id: fc.constantFrom('a1', 'a2'),
        op: fc.constantFrom('rename', 'revise', 'delete'),
        at: fc.constantFrom(t1, t2),
      }),
      {
        maxLength: 25,
      },
    )
    .map((ops) => {
      const version = new Map<string, number>()
      const events: ArtifactEvent[] = []
      for (const { id, op, at } of ops) {
        const current = version.get(id)
        if (current === undefined) {
          version.set(id, 1)
          events.push(created(id))
        } else if (current < 0) continue
        else if (op === 'rename') events.push(renamed(id, `t${events.length}`, current, at))
        else if (op === 'revise') {
          version.set(id, current + 1)
          events.push(revised(id, current + 1, `v${current + 1}`, at))
        } else {
          version.set(id, -1)
          events.push(deleted(id, current, at))
        }
      }
      return events
    })

  it('a batch applied at once leaves both tables as applying it in any smaller batches does', () => {
    fc.assert(
      fc.property(histories, fc.array(fc.nat(30)), (batch, cuts) => {
        const bounds = [...new Set([0, ...cuts.map((c) => Math.min(c, batch.length)), batch.length])].sort((a, b) => a - b)
        expect(inBatches(artifactRows, batch, bounds)).toEqual(evolveTable(artifactRows, [], batch).rows)
        expect(inBatches(artifactVersionRows, batch, bounds)).toEqual(evolveTable(artifactVersionRows, [], batch).rows)
      }),
    )
  })
})
