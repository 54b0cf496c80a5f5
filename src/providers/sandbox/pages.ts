/**
 * The sandbox's hosted verification page and result page. Plain HTML with inline styles (no scripts), every
 * interpolated value escaped, served with a strict Content-Security-Policy.
 */
import type { SandboxPerson, SandboxSession } from './sessions.js';

export function escapeHtml(value: unknown): string {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
} as const;

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f6f8;color:#1b1f24;margin:0;line-height:1.5}
main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin:0 0 .25rem}
.badge{display:inline-block;font-size:.75rem;font-weight:600;letter-spacing:.04em;text-transform:uppercase;
  background:#fff3cd;color:#6b4e00;border-radius:4px;padding:.1rem .45rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;font-size:.9rem}dt{color:#57606a}
dd{margin:0;word-break:break-all;font-family:ui-monospace,monospace}
fieldset{border:1px solid #d0d7de;border-radius:8px;margin:1.25rem 0;padding:1rem}legend{font-weight:600;padding:0 .3rem}
label{display:block;font-size:.9rem;margin-top:.6rem}
input{width:100%;box-sizing:border-box;font:inherit;padding:.45rem .6rem;border:1px solid #8c959f;border-radius:6px}
.actions{display:flex;gap:.6rem;flex-wrap:wrap;margin-top:1rem}
button{font:inherit;font-weight:600;border:0;border-radius:6px;padding:.6rem 1.1rem;cursor:pointer;color:#fff}
button:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid #0969da;outline-offset:2px}
.approve{background:#1a7f37}.decline{background:#cf222e}.review{background:#6e5b00}
.result{font-size:1.1rem;font-weight:600}.approved{color:#1a7f37}.declined{color:#cf222e}.in-review{color:#6e5b00}
.error{color:#cf222e;font-weight:600}
a.continue{display:inline-block;margin-top:1rem;background:#0969da;color:#fff;padding:.6rem 1.1rem;border-radius:6px;text-decoration:none;font-weight:600}
`;

function layout(title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">${head}
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** Which application asks and why, from the session metadata the gateway sent (`application`, `purpose`). */
function requester(s: SandboxSession): { application?: string; purpose?: string } {
  const m = s.metadata ?? {};
  return {
    ...(typeof m.application === 'string' && m.application !== '' ? { application: m.application } : {}),
    ...(typeof m.purpose === 'string' && m.purpose !== '' ? { purpose: m.purpose } : {}),
  };
}

function requesterText(s: SandboxSession): string {
  const { application, purpose } = requester(s);
  if (!application && !purpose) return '';
  return `<p id="requester"><strong>${escapeHtml(application ?? 'An application')}</strong> asks you to verify your identity${
    purpose ? `: ${escapeHtml(purpose)}` : '.'
  }</p>`;
}

function details(s: SandboxSession): string {
  return `<dl>
<dt>Session</dt><dd id="session-id">${escapeHtml(s.sessionId)}</dd>
<dt>Status</dt><dd id="session-status">${escapeHtml(s.status)}</dd>
<dt>Workflow</dt><dd>${escapeHtml(s.workflowId)}</dd>
</dl>`;
}

/** The verification page: session details, editable document data and the three outcomes. */
export function verificationPage(s: SandboxSession, person: SandboxPerson, error?: string): string {
  return layout(
    'Identity verification (sandbox)',
    `<h1>Verify your identity</h1>
${requesterText(s)}
<p><span class="badge">Sandbox</span> No document or camera is needed: choose the outcome this verification should have.</p>
${details(s)}
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post">
<fieldset>
<legend>Data read from the document</legend>
<label for="first_name">First name</label>
<input id="first_name" name="first_name" autocomplete="off" maxlength="100" required value="${escapeHtml(person.firstName)}">
<label for="last_name">Last name</label>
<input id="last_name" name="last_name" autocomplete="off" maxlength="100" required value="${escapeHtml(person.lastName)}">
<label for="date_of_birth">Date of birth</label>
<input id="date_of_birth" name="date_of_birth" type="date" required value="${escapeHtml(person.dateOfBirth)}">
</fieldset>
<div class="actions">
<button class="approve" type="submit" name="decision" value="approved">Approve</button>
<button class="decline" type="submit" name="decision" value="declined">Decline</button>
<button class="review" type="submit" name="decision" value="in_review">Send to review</button>
</div>
</form>`,
  );
}

const RESULT_TEXT: Record<string, [cls: string, text: string]> = {
  Approved: ['approved', 'Verification approved'],
  Declined: ['declined', 'Verification declined'],
  'In Review': ['in-review', 'Verification sent to review'],
};

/** Shown after the form was submitted, or when a finished session's page is opened again. */
export function resultPage(s: SandboxSession, callbackUrl: string | undefined): string {
  const [cls, text] = RESULT_TEXT[s.status] ?? ['', `Verification ${s.status}`];
  const { application } = requester(s);
  const back = application ? `Return to ${application}` : 'Continue';
  // With a callback the user is taken back to the application after a moment, or at once with the button.
  return layout(
    text,
    `<h1>Identity verification</h1>
<p class="result ${cls}" role="status">${escapeHtml(text)}</p>
${details(s)}
${
  callbackUrl
    ? `<p>You will be taken back in a few seconds.</p><a class="continue" id="continue" href="${escapeHtml(callbackUrl)}">${escapeHtml(back)}</a>`
    : '<p>You can close this page.</p>'
}`,
    callbackUrl ? `\n<meta http-equiv="refresh" content="${RETURN_AFTER_SECONDS};url=${escapeHtml(callbackUrl)}">` : '',
  );
}

/** Seconds the result page is shown before the browser returns to the application. */
export const RETURN_AFTER_SECONDS = 8;

export function notFoundPage(): string {
  return layout(
    'Verification not found',
    '<h1>Verification not found</h1><p>This verification link is unknown or has been removed.</p>',
  );
}
