import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

export type FieldError = { readonly path: string; readonly message: string }

export type Problem = {
  readonly status: ContentfulStatusCode
  readonly code: string
  readonly title: string
  readonly detail?: string
  readonly errors?: readonly FieldError[]
  readonly headers?: Record<string, string>
}

/** An error that is the answer: thrown anywhere in a request, rendered as RFC 9457 problem+json. */
export class HttpProblem extends Error {
  override readonly name = 'HttpProblem'
  readonly problem: Problem
  constructor(problem: Problem) {
    super(problem.detail ?? problem.title)
    this.problem = problem
  }
}

export const problemBody = (p: Problem) => ({
  type: `https://docs.workspace.dev/problems/${p.code.toLowerCase().replaceAll('_', '-')}`,
  title: p.title,
  status: p.status,
  detail: p.detail ?? p.title,
  code: p.code,
  ...(p.errors ? { errors: p.errors } : {}),
})

export function renderProblem(c: Context, p: Problem): Response {
  const headers = new Headers({ 'content-type': 'application/problem+json', ...p.headers })
  const requestId = c.get('requestId' as never) as string | undefined
  if (requestId) headers.set('x-request-id', requestId)
  return new Response(JSON.stringify(problemBody(p)), { status: p.status, headers })
}

export const badRequest = (detail: string, errors?: FieldError[]) =>
  new HttpProblem({
    status: 400,
    code: 'INVALID_INPUT',
    title: 'Invalid input',
    detail,
    ...(errors ? { errors } : {}),
  })
export const unauthorized = (detail = 'credentials are missing or invalid') =>
  new HttpProblem({ status: 401, code: 'UNAUTHENTICATED', title: 'Not signed in', detail })
export const forbidden = (detail = 'you may not do this', code = 'FORBIDDEN') =>
  new HttpProblem({ status: 403, code, title: 'Forbidden', detail })
export const notFound = (detail = 'no such resource') =>
  new HttpProblem({ status: 404, code: 'NOT_FOUND', title: 'Not found', detail })
