import type { ArtifactEvent, ArtifactKind } from '../domain/artifacts.ts'
import { type RowModel, rowProjector, type TableModel } from './rows.ts'

/** A row of tenant.artifacts: a live artifact (its tenant_id is the batch's). */
export type ArtifactRow = {
  readonly id: string
  readonly kind: ArtifactKind
  readonly title: string
  readonly room_id: string
  readonly task_id: string | null
  readonly run_id: string | null
  readonly file_id: string | null
  readonly url: string | null
  readonly version: number
  readonly created_by: string
  readonly created_by_type: 'user' | 'agent' | 'system'
  readonly created_at: string
  readonly updated_at: string
}

/** An artifact's row: created once (a repeat keeps the first), renamed or given a new version, deleted with it. */
export const artifactRows: RowModel<ArtifactEvent, ArtifactRow> = {
  table: 'artifacts',
  columns: [
    'id',
    'kind',
    'title',
    'room_id',
    'task_id',
    'run_id',
    'file_id',
    'url',
    'version',
    'created_by',
    'created_by_type',
    'created_at',
    'updated_at',
  ],
  key: 'id',
  keyOf: (e) => e.data.artifactId,
  evolve(row, e) {
    switch (e.type) {
      case 'artifact.created':
        return (
          row ?? {
            id: e.data.artifactId,
            kind: e.data.kind,
            title: e.data.title,
            room_id: e.data.roomId,
            task_id: e.data.taskId,
            run_id: e.data.runId,
            file_id: e.data.fileId,
            url: e.data.url,
            version: 1,
            created_by: e.data.createdBy,
            created_by_type: e.data.createdByType,
            created_at: e.data.at,
            updated_at: e.data.at,
          }
        )
      case 'artifact.updated':
        return row && { ...row, title: e.data.title, version: e.data.version, updated_at: e.data.at }
      case 'artifact.deleted':
        return null
    }
  },
}

/** A row of tenant.artifact_versions: one version of a patch's or a report's text. */
export type ArtifactVersionRow = {
  readonly artifact_id: string
  readonly version: number
  readonly content: string
  readonly created_by: string
  readonly created_at: string
}

/**
 * Each version's text, keyed by artifact and version: the creation writes version 1, each new content the next; a
 * deletion takes every version with it (the event names how many there were). A file or a link has no text.
 */
export const artifactVersionRows: TableModel<ArtifactEvent, ArtifactVersionRow> = {
  table: 'artifact_versions',
  columns: ['artifact_id', 'version', 'content', 'created_by', 'created_at'],
  key: ['artifact_id', 'version'],
  refsOf(e) {
    const artifact_id = e.data.artifactId
    switch (e.type) {
      case 'artifact.created':
        return e.data.content === null ? [] : [{ artifact_id, version: 1 }]
      case 'artifact.updated':
        return e.data.content === undefined ? [] : [{ artifact_id, version: e.data.version }]
      case 'artifact.deleted':
        return Array.from({ length: e.data.version }, (_, i) => ({ artifact_id, version: i + 1 }))
    }
  },
  evolve(row, e) {
    switch (e.type) {
      case 'artifact.created':
        return (
          row ??
          (e.data.content === null
            ? null
            : {
                artifact_id: e.data.artifactId,
                version: 1,
                content: e.data.content,
                created_by: e.data.createdBy,
                created_at: e.data.at,
              })
        )
      case 'artifact.updated':
        return (
          row ??
          (e.data.content === undefined
            ? null
            : {
                artifact_id: e.data.artifactId,
                version: e.data.version,
                content: e.data.content,
                created_by: e.data.updatedBy,
                created_at: e.data.at,
              })
        )
      case 'artifact.deleted':
        return null
    }
  },
}

/** tenant.artifacts and tenant.artifact_versions. */
export const artifactsProjector = rowProjector({
  name: 'artifacts',
  version: 1,
  schema: 'tenant',
  eventTypes: ['artifact.created', 'artifact.updated', 'artifact.deleted'],
  models: [artifactRows, artifactVersionRows],
})
