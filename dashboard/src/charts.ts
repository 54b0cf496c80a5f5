/**
 * Chart.js, with only the parts the dashboard draws (bar charts) registered so the bundle stays small. Each chart sits
 * in a figure with a text summary (aria-label) and the same numbers in a table next to it for screen readers.
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  Legend,
  LinearScale,
  Tooltip,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);
Chart.defaults.color = '#1f2933';
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
Chart.defaults.animation = false;

/** Outcome colours, each with at least 3:1 contrast against white (WCAG non-text contrast). */
export const OUTCOME_COLOURS: Record<string, string> = {
  allowed: '#1b7f3b',
  denied: '#c62828',
  challenged: '#a35c00',
  rate_limited: '#6a1b9a',
  error: '#455a64',
};

export const OUTCOME_LABELS: Record<string, string> = {
  allowed: 'Allowed',
  denied: 'Denied',
  challenged: 'Challenged',
  rate_limited: 'Rate limited',
  error: 'Error',
};

export const OUTCOMES = ['allowed', 'denied', 'challenged', 'rate_limited', 'error'] as const;

/** A chart in `canvas`, replacing the one drawn there before. */
export function draw(canvas: HTMLCanvasElement, config: ChartConfiguration<'bar'>): void {
  Chart.getChart(canvas)?.destroy();
  new Chart(canvas, config);
}
