/**
 * The kycgate dashboard: sign in with an admin key (kept in sessionStorage for this tab only, sent as `x-admin-key`),
 * then one page of sections, each reading the admin API: decisions over time, the KYC funnel, refusal reasons,
 * upstream and provider health, certificate expiry, incidents (when the gateway has them) and recent requests with a
 * drill-down to their audit records. Everything refreshes every 30 seconds while the tab is visible.
 */
import './style.css';
import { ApiError, call, oidcOffer, type Principal, signOut, storedKey, storeKey, whenUnauthenticated } from './api.js';
import { h, replace } from './dom.js';
import { certificatesView } from './views/certificates.js';
import { decisionsView } from './views/decisions.js';
import { funnelView } from './views/funnel.js';
import { healthView } from './views/health.js';
import { incidentsView } from './views/incidents.js';
import { refusalsView } from './views/refusals.js';
import { drill, requestsView } from './views/requests.js';
import type { View, ViewContext } from './views/types.js';

const VIEWS: View[] = [
  decisionsView,
  funnelView,
  refusalsView,
  healthView,
  certificatesView,
  incidentsView,
  requestsView,
];
const WINDOWS: Array<[string, string]> = [
  ['15m', 'Last 15 minutes'],
  ['1h', 'Last hour'],
  ['6h', 'Last 6 hours'],
  ['24h', 'Last 24 hours'],
];
const REFRESH_MS = 30_000;

const app = document.getElementById('app')!;
let timer: number | undefined;

function signIn(message?: string): void {
  if (timer !== undefined) clearInterval(timer);
  const input = h('input', {
    id: 'admin-key',
    name: 'admin-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
  });
  const error = h('p', { id: 'login-error', class: 'error', role: 'alert' }, message ?? '');
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'login card',
      'aria-labelledby': 'login-title',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        button.disabled = true;
        error.textContent = '';
        const key = input.value.trim();
        try {
          const me = await call<Principal>('/me', {}, key);
          storeKey(key);
          show(me);
        } catch (err) {
          error.textContent =
            err instanceof ApiError && err.status === 401 ? 'This admin key was not accepted.' : (err as Error).message;
          button.disabled = false;
          input.focus();
        }
      },
    },
    h('h1', { id: 'login-title' }, 'kycgate dashboard'),
    h(
      'p',
      {},
      'Sign in with an admin key. The demo (',
      h('code', {}, 'npm start'),
      ') writes one to ',
      h('code', {}, '.kycgate/admin-key'),
      '.',
    ),
    h('div', { class: 'field' }, h('label', { for: 'admin-key' }, 'Admin key'), input),
    error,
    h('div', { class: 'login-actions' }, button, location.protocol === 'https:' ? certificateButton(error) : null),
  );
  replace(app, h('main', { id: 'main', class: 'login-page' }, form));
  input.focus();
  void oidcOffer().then((offer) => {
    if (offer === undefined || !form.isConnected) return;
    const link = h('button', { type: 'button', class: 'secondary', onclick: () => location.assign(offer.login) });
    link.textContent = `Sign in with ${offer.name}`;
    form.querySelector('.login-actions')!.append(link);
    form.querySelector('p')!.firstChild!.textContent = `Sign in through ${offer.name} or with an admin key. The demo (`;
  });
}

/** Over HTTPS: sign in with the client certificate the browser presents (mapped to a role by `admin.api.mtls`). */
function certificateButton(error: HTMLElement): HTMLButtonElement {
  const button = h('button', {
    type: 'button',
    class: 'secondary',
    onclick: async () => {
      button.disabled = true;
      error.textContent = '';
      try {
        const me = await call<Principal>('/me', {}, '');
        storeKey('');
        show(me);
      } catch (err) {
        error.textContent =
          err instanceof ApiError && err.status === 401
            ? 'No client certificate mapped to a role was presented.'
            : (err as Error).message;
        button.disabled = false;
      }
    },
  });
  button.textContent = 'Sign in with client certificate';
  return button;
}

function show(principal: Principal): void {
  const ctx: ViewContext = {
    window: '1h',
    principal,
    filter: { route: '', consumer: '' },
    filterChanged: () => void Promise.all([load(decisionsView), load(requestsView)]),
    drill: (id) => void openDrill(id),
  };
  const sections = new Map<View, { section: HTMLElement; body: HTMLElement }>();
  const status = h('p', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite' });
  const dialog = h('dialog', { id: 'drill', 'aria-labelledby': 'drill-title' });
  const openDrill = (id: string) => {
    dialog.showModal();
    return drill(dialog, id, () => dialog.close());
  };
  const nav = h('nav', { 'aria-label': 'Sections' }, h('ul', {}));
  const grid = h('div', { class: 'grid' });
  for (const view of VIEWS) {
    const body = h('div', { class: 'body' }, h('p', { class: 'muted' }, 'Loading…'));
    const section = h(
      'section',
      { id: view.id, class: `card ${view.id}`, 'aria-labelledby': `${view.id}-title`, 'aria-busy': 'true' },
      h('h2', { id: `${view.id}-title` }, view.title),
      body,
    );
    sections.set(view, { section, body });
    if (view.available === undefined) {
      grid.append(section);
      nav.firstElementChild!.append(h('li', {}, h('a', { href: `#${view.id}` }, view.nav)));
    }
  }
  const windowSelect = h(
    'select',
    {
      id: 'window',
      onchange: (e: Event) => {
        ctx.window = (e.target as HTMLSelectElement).value;
        void refresh();
      },
    },
    ...WINDOWS.map(([v, label]) => h('option', { value: v, selected: v === ctx.window }, label)),
  );
  replace(
    app,
    h(
      'header',
      { class: 'top' },
      h('p', { class: 'brand' }, 'kycgate'),
      nav,
      h(
        'div',
        { class: 'controls' },
        h('label', { for: 'window' }, 'Window'),
        windowSelect,
        h('button', { type: 'button', onclick: () => void refresh() }, 'Refresh'),
        h(
          'span',
          { class: 'who', title: `Signed in with ${principal.method}` },
          `${principal.actor} (${principal.role})`,
        ),
        h(
          'button',
          {
            type: 'button',
            onclick: async () => {
              await signOut();
              signIn();
            },
          },
          'Sign out',
        ),
      ),
    ),
    h('main', { id: 'main' }, h('h1', { class: 'visually-hidden' }, 'kycgate dashboard'), status, grid),
    dialog,
  );

  async function load(view: View): Promise<void> {
    const { section, body } = sections.get(view)!;
    section.setAttribute('aria-busy', 'true');
    try {
      await view.load(ctx, body);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      replace(body, h('p', { class: 'error' }, `Could not load: ${(err as Error).message}`));
    } finally {
      section.setAttribute('aria-busy', 'false');
    }
  }

  async function refresh(): Promise<void> {
    status.textContent = 'Refreshing…';
    await Promise.all(
      VIEWS.map(async (view) => {
        if (view.available !== undefined) {
          const { section } = sections.get(view)!;
          if (!(await view.available(ctx))) return;
          if (!section.isConnected) {
            grid.insertBefore(section, sections.get(requestsView)!.section);
            nav.firstElementChild!.insertBefore(
              h('li', {}, h('a', { href: `#${view.id}` }, view.nav)),
              nav.firstElementChild!.lastElementChild,
            );
          }
        }
        await load(view);
      }),
    );
    status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  void refresh();
  if (timer !== undefined) clearInterval(timer);
  timer = window.setInterval(() => {
    if (document.visibilityState === 'visible' && !dialog.open) void refresh();
  }, REFRESH_MS);
}

whenUnauthenticated(() => {
  storeKey(null);
  signIn('The admin key is no longer accepted (revoked or expired). Sign in again.');
});

// Back from the OIDC issuer: the session is in its cookie (no key to keep).
if (location.hash === '#signed-in') {
  history.replaceState(null, '', location.pathname);
  storeKey('');
}
const key = storedKey();
if (key === null) signIn();
else
  call<Principal>('/me', {}, key)
    .then(show)
    .catch((err: unknown) => {
      // A 401 already brought the sign-in form back (whenUnauthenticated).
      if (!(err instanceof ApiError && err.status === 401)) signIn((err as Error).message);
    });
