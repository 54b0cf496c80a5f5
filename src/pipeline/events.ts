/**
 * Gateway events: the one channel through which policies and subsystems report what happened (authentication
 * failures, KYC decisions, webhooks, key changes, config reloads, finished requests). The audit trail and the
 * metrics subscribe to it; emitters never know who listens. Delivery is synchronous and in order: a listener must
 * be cheap (append to a buffer), and one that throws is isolated from the others.
 */
import type { RequestContext } from './context.js';

export interface GatewayEvent {
  /** Dotted kind, e.g. `auth.failure`, `kyc.decision`, `webhook.accepted`, `key.revoked`, `config.reloaded`. */
  type: string;
  /** Request id, when the event belongs to a request. */
  requestId?: string;
  route?: string;
  /** Short machine-readable outcome or reason, e.g. `invalid_signature`. */
  outcome?: string;
  /** Further fields. Never secrets or raw PII: emitters pseudonymise first. */
  data?: Record<string, unknown>;
}

/** A request refused before a route or context existed (framing, path, unknown route). */
export interface RefusedRequest {
  requestId: string;
  listener: string;
  method: string;
  clientIp: string;
  status: number;
  problem: string;
  startedAt: number;
}

export interface EventListener {
  onEvent?(event: GatewayEvent): void;
  /** Every request that reached a route, once its exchange has ended. */
  onRequestComplete?(ctx: RequestContext): void;
  /** Every request refused before routing. */
  onRequestRefused?(info: RefusedRequest): void;
}

export class EventBus {
  private listeners: EventListener[] = [];
  /** Listeners of one event type (`on`), so a feature that counts its own events is not called for every other. */
  private readonly byType = new Map<string, Array<(event: GatewayEvent) => void>>();
  private eventListeners: EventListener[] = [];
  private completeListeners: EventListener[] = [];
  private refusedListeners: EventListener[] = [];

  subscribe(listener: EventListener): () => void {
    this.listeners.push(listener);
    this.index();
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
      this.index();
    };
  }

  private index(): void {
    this.eventListeners = this.listeners.filter((l) => l.onEvent);
    this.completeListeners = this.listeners.filter((l) => l.onRequestComplete);
    this.refusedListeners = this.listeners.filter((l) => l.onRequestRefused);
  }

  get observesRequests(): boolean {
    return this.completeListeners.length > 0;
  }

  /** Calls `listener` with every event of `type`; returns the unsubscribe function. */
  on(type: string, listener: (event: GatewayEvent) => void): () => void {
    const list = this.byType.get(type);
    if (list === undefined) this.byType.set(type, [listener]);
    else list.push(listener);
    return () => {
      const current = this.byType.get(type);
      if (current === undefined) return;
      const i = current.indexOf(listener);
      if (i !== -1) current.splice(i, 1);
      if (current.length === 0) this.byType.delete(type);
    };
  }

  emit(event: GatewayEvent): void {
    const list = this.eventListeners;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!.onEvent!(event);
      } catch {
        // isolated: one failing listener must not stop the others or the request
      }
    }
    const typed = this.byType.get(event.type);
    if (typed === undefined) return;
    for (let i = 0; i < typed.length; i++) {
      try {
        typed[i]!(event);
      } catch {
        // isolated
      }
    }
  }

  requestComplete(ctx: RequestContext): void {
    const list = this.completeListeners;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!.onRequestComplete!(ctx);
      } catch {
        // isolated
      }
    }
  }

  requestRefused(info: RefusedRequest): void {
    const list = this.refusedListeners;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!.onRequestRefused!(info);
      } catch {
        // isolated
      }
    }
  }
}
