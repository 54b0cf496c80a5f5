/** Certificates and SVIDs served by TLS listeners and the admin listener, soonest expiry first. */
import { call } from '../api.js';
import { badge, duration, replace, table, time } from '../dom.js';
import type { View } from './types.js';

interface Certificate {
  listener: string;
  not_after: string | null;
  expires_in_seconds: number | null;
  serial: string | null;
  spiffe_id: string | null;
  source: string | null;
  last_rotation: string | null;
  rotations: number;
}

const DAY = 86400;

function expiry(seconds: number | null): HTMLElement {
  if (seconds === null) return badge('unknown', 'info');
  if (seconds <= 0) return badge(`expired ${duration(-seconds)} ago`, 'bad');
  if (seconds < 7 * DAY) return badge(`expires in ${duration(seconds)}`, 'bad');
  if (seconds < 30 * DAY) return badge(`expires in ${duration(seconds)}`, 'warn');
  return badge(`expires in ${duration(seconds)}`, 'ok');
}

export const certificatesView: View = {
  id: 'certificates',
  title: 'Certificate expiry',
  nav: 'Certificates',
  async load(_ctx, body) {
    const { items } = await call<{ items: Certificate[] }>('/runtime/certificates');
    items.sort((a, b) => (a.expires_in_seconds ?? Infinity) - (b.expires_in_seconds ?? Infinity));
    replace(
      body,
      table(
        'Certificates served',
        ['Listener', 'Expiry', 'Not after', 'Source', 'Serial / SPIFFE ID', 'Rotations'],
        items,
        (c) => [
          c.listener,
          expiry(c.expires_in_seconds),
          time(c.not_after),
          c.source ?? '—',
          c.spiffe_id ?? c.serial ?? '—',
          c.last_rotation ? `${c.rotations} (last ${time(c.last_rotation)})` : c.rotations,
        ],
        'No TLS listener serves a certificate.',
      ),
    );
  },
};
