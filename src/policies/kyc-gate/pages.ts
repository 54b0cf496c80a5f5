/**
 * What a browser sees when the gate cannot let it through and has no verification page to send it to: the
 * verification is in review, was declined, or cannot start right now. The same status, Retry-After and request id
 * as the problem+json an API client gets, as a small HTML page (no scripts, strict CSP); a page in review reloads
 * itself when it is worth trying again.
 */
import type { Problem } from '../../pipeline/problem.js';
import type { Reply } from '../../pipeline/policy.js';

function escapeHtml(value: unknown): string {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const STYLE =
  'body{font-family:system-ui,sans-serif;background:#f4f6f8;color:#1b1f24;margin:0;line-height:1.5}' +
  'main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}' +
  'h1{font-size:1.4rem;margin:0 0 .5rem}.id{color:#57606a;font-size:.8rem;font-family:ui-monospace,monospace}';

/** The HTML answer for a browser, carrying the problem's status and headers. */
export function browserPage(p: Problem, requestId: string, application: string | undefined): Reply {
  const retry = p.headers?.['retry-after'];
  const refresh = p.status === 403 && typeof retry === 'number' ? `<meta http-equiv="refresh" content="${retry}">` : '';
  const who = application ? `<p>${escapeHtml(application)} needs a verified identity for this page.</p>` : '';
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">${refresh}<title>${escapeHtml(p.title)}</title><style>${STYLE}</style></head>
<body><main><h1>${escapeHtml(p.title)}</h1>${who}<p role="status">${escapeHtml(p.detail ?? '')}</p>
<p class="id">Request id: ${escapeHtml(requestId)}</p></main></body></html>
`;
  const headers: Record<string, string | number | string[]> = {
    ...(p.headers ?? {}),
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'content-length': Buffer.byteLength(body),
  };
  return { status: p.status, headers, body };
}
