import { z } from '@hono/zod-openapi'

export const Uuid = z.uuid().openapi({ example: '01935c7e-5a4b-7c2d-8e9f-0a1b2c3d4e5f' })

/** The id of what a create makes, when the client chooses it: a retry after a crash answers the first result. */
export const ClientChosenId = z.uuid().optional().openapi({
  description: 'an id of your choosing (UUIDv7); the same create retried under it answers as the first time, a different one 409',
})

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem')

export const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem } },
})

export const Position = z.number().int().nonnegative().nullable().openapi({
  description: 'global position of the last event appended; pass it as consistentAfter to read your write',
})

export const consistentAfterQuery = {
  consistentAfter: z
    .string()
    .regex(/^\d{1,18}$/)
    .optional()
    .openapi({ description: 'wait (bounded) until read models reflect this position' }),
}

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  body: { content: { 'application/json': { schema } }, required: true },
})

export const json = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { 'application/json': { schema } },
})
