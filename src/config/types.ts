/** Typed view of a validated configuration (defaults filled in). The schema in schema.ts documents each key. */

import type { DecisionListenerConfig } from './decision-listener.js';
import type { AdminApiConfig, AdminTlsConfig } from './admin-api-schema.js';

export type LocalSecretRef = { env: string } | { file: string };
export type VaultSecretRef = { vault: { path: string; key: string } };
export type SecretRef = LocalSecretRef | VaultSecretRef;

export interface VaultConfig {
  address: string;
  namespace?: string;
  ca_file?: string;
  timeout_ms: number;
  refresh_interval_s: number;
  retry_interval_s: number;
  auth: {
    token?: LocalSecretRef;
    approle?: { mount: string; role_id: LocalSecretRef; secret_id: LocalSecretRef };
    /** Login with the gateway's own SPIFFE identity: a JWT-SVID through Vault's JWT auth method. */
    jwt_svid?: { mount: string; role: string; audience: string; socket?: string };
    /** Login with the gateway's own X509-SVID as TLS client certificate, through Vault's cert auth method. */
    x509_svid?: { mount: string; role: string; socket?: string };
  };
}

export interface TimeoutsConfig {
  connect_ms?: number;
  headers_ms?: number;
  body_idle_ms?: number;
  websocket_idle_ms?: number;
}

export interface ListenerConfig {
  name: string;
  address: string;
  port: number;
  tls?: {
    /** Certificate and key files; absent when `workload_api` supplies the certificate. */
    cert?: string;
    key?: string;
    workload_api?: { socket?: string; spiffe_id?: string; ready_timeout_ms: number; client_trust: boolean };
    min_version: 'TLSv1.2' | 'TLSv1.3';
    ciphers?: string;
    session_timeout_s: number;
    expiry_warning_s?: number;
    client_auth: 'none' | 'optional' | 'required';
    client_ca?: string[];
    trust_domains?: Array<{ name: string; bundle: string }>;
  };
  plain: 'serve' | 'redirect' | 'refuse';
  https_port?: number;
  health: boolean;
  /** HTTP/2: ALPN h2 on TLS (default), prior knowledge on a plain listener (h2c), or off. */
  http2: 'alpn' | 'h2c' | 'off';
  /** Present on decision listeners (front-proxy forward-auth). */
  decision?: DecisionListenerConfig;
}

export type PolicyConfigEntry = Record<string, unknown>;

export interface UpstreamConfig {
  targets: Array<{ url: string; weight: number }>;
  balance: 'round_robin' | 'least_outstanding';
  connections: number;
  keep_alive_timeout_ms: number;
  passive_health: { consecutive_failures: number; eject_ms: number };
  active_health?: {
    path: string;
    interval_ms: number;
    timeout_ms: number;
    unhealthy_after: number;
    healthy_after: number;
  };
  connect_retries: number;
  idempotent_retries: number;
  /** HTTP/2 to the targets (h2 over TLS, h2c on http targets). */
  http2: boolean;
  tls?: {
    ca?: string;
    servername?: string;
    reject_unauthorized: boolean;
    spiffe?: {
      trust_domains: Array<{ name: string; bundle: string }>;
      id?: string;
      trust_domain?: string;
      client_svid?: { socket?: string; spiffe_id?: string };
    };
  };
}

export interface RouteConfig {
  name: string;
  match: { hosts?: string[]; methods?: string[]; path?: string; prefix?: string };
  upstream?: string;
  strip_prefix?: string;
  preserve_host: boolean;
  /** Filled in by the schema's default for configured routes; subsystem routes leave it out (off). */
  websocket?: boolean;
  max_body_bytes?: number;
  timeouts?: TimeoutsConfig;
  policies: PolicyConfigEntry[];
  disable_default_policies: string[];
  critical?: boolean;
  function?: string;
}

export interface GatewayConfig {
  data_dir?: string;
  listeners: ListenerConfig[];
  admin: { enabled: boolean; address: string; port: number; tls?: AdminTlsConfig; api: AdminApiConfig };
  server: {
    workers: 'auto' | number;
    max_header_bytes: number;
    headers_timeout_ms: number;
    request_timeout_ms: number;
    keep_alive_timeout_ms: number;
    drain_timeout_ms: number;
    trusted_proxies: string[];
    health_paths: boolean;
    path_semicolons: 'allow' | 'refuse';
    underscored_headers: 'drop' | 'refuse' | 'allow';
    http2: {
      max_concurrent_streams: number;
      max_header_fields: number;
      max_resets_per_second: number;
      initial_window_bytes: number;
      max_session_memory_mb: number;
      idle_timeout_ms: number;
    };
  };
  log: { level: string; access: boolean; format: 'auto' | 'json' | 'pretty' };
  defaults: { max_body_bytes: number; timeouts: TimeoutsConfig; policies: PolicyConfigEntry[] };
  upstreams: Record<string, UpstreamConfig>;
  routes: RouteConfig[];
  vault?: VaultConfig;
  /** Sections contributed by subsystems (kyc, stores, audit ...), validated by their own schemas. */
  [section: string]: unknown;
}

/** A loaded config with where it came from (relative paths in it resolve against `baseDir`). */
export interface LoadedConfig {
  config: GatewayConfig;
  /** Absolute path of the file, or undefined for the built-in demo. */
  file: string | undefined;
  baseDir: string;
}
