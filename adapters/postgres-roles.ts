/**
 * The roles the application uses; created once per cluster, granted per database. The migrating owner holds
 * the tables; `app` is the login every pool of the server uses, `reader` and `projector` the roles it switches
 * to per transaction (SET LOCAL ROLE semantics) to read and write tenant data under row-level security;
 * `draftWriter` writes drafts, the one table commands write directly (tenant migration 010 creates it).
 */
export const ROLES = { reader: 'ws_reader', projector: 'ws_projector', app: 'ws_app', draftWriter: 'ws_draft_writer' } as const
