import type { Principal } from '../api.js';

/** What every view is given when it loads: the time window chosen in the header and who is signed in. */
export interface ViewContext {
  window: string;
  principal: Principal;
  /** Route and consumer chosen in the Decisions section (empty: all); the Requests section follows them. */
  filter: { route: string; consumer: string };
  /** Reloads the sections that follow the filter. */
  filterChanged(): void;
  /** Opens the audit records of a request (the Requests view's drill-down). */
  drill(requestId: string): void;
}

export interface View {
  id: string;
  title: string;
  /** The section's name in the header's navigation. */
  nav: string;
  /** Fills `body` (the section's content); called on sign-in, on a window change and on refresh. */
  load(ctx: ViewContext, body: HTMLElement): Promise<void>;
  /** False hides the section (e.g. incidents when the gateway has no incidents endpoint). */
  available?(ctx: ViewContext): Promise<boolean>;
}

/** Bucket width for a window, so a chart has between 15 and 96 bars. */
export function stepOf(window: string): string {
  return { '15m': '1m', '1h': '1m', '6h': '5m', '24h': '15m' }[window] ?? '1m';
}
