/**
 * A minimal cookie jar for driving browser flows over HTTP in tests: honours Path, Max-Age/
 * Expires and deletion; one host. `fetch` follows no redirects, so every hop can be inspected.
 */
type Cookie = { name: string; value: string; path: string; expires: number | null }

export class CookieJar {
  readonly #cookies = new Map<string, Cookie>()

  store(response: Response, requestUrl: string): void {
    const defaultPath = new URL(requestUrl).pathname.replace(/\/[^/]*$/, '') || '/'
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';').map((s) => s.trim())
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      let path = defaultPath
      let expires: number | null = null
      for (const attribute of attributes) {
        const [k = '', v = ''] = attribute.split('=')
        const key = k.toLowerCase()
        if (key === 'path') path = v || '/'
        if (key === 'max-age') expires = Date.now() + Number(v) * 1000
        if (key === 'expires' && expires === null) expires = Date.parse(v)
      }
      const id = `${name};${path}`
      if (expires !== null && expires <= Date.now()) this.#cookies.delete(id)
      else this.#cookies.set(id, { name, value, path, expires })
    }
  }

  header(url: string): string {
    const path = new URL(url).pathname
    const now = Date.now()
    return [...this.#cookies.values()]
      .filter(
        (c) =>
          (c.expires === null || c.expires > now) &&
          (path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)),
      )
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ')
  }

  names(): string[] {
    return [...this.#cookies.values()].map((c) => c.name)
  }

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    const cookie = this.header(url)
    if (cookie) headers.set('cookie', cookie)
    const response = await fetch(url, { ...init, headers, redirect: 'manual' })
    this.store(response, url)
    return response
  }
}

/** The absolute target of a redirect response. */
export function location(response: Response, base: string): string {
  const value = response.headers.get('location')
  if (!value) throw new Error(`expected a redirect, got ${response.status}`)
  return new URL(value, base).href
}
