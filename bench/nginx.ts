/**
 * nginx configurations for the benchmark: the static upstream (when nginx is installed it answers cheaper than any
 * Node server, leaving more of the shared core to the load generator) and the one-worker reverse-proxy peer.
 * Both keep connections alive without a request cap, so no run pays for reconnects (or TLS handshakes) midway.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const BODY = '{"ok":true}';

function common(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const temp = (name: string) => path.join(dir, name);
  return `worker_processes 1;
daemon off;
pid ${temp('nginx.pid')};
error_log ${temp('error.log')} warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  keepalive_requests 100000000;
  keepalive_timeout 120s;
`;
}

export interface TlsFiles {
  cert: string;
  key: string;
}

/** Writes the static upstream's config; returns its path. */
export function upstreamConfig(dir: string, httpPort: number, httpsPort: number, tls: TlsFiles): string {
  const file = path.join(dir, 'nginx.conf');
  writeFileSync(
    file,
    `${common(dir)}
  server {
    listen 127.0.0.1:${httpPort};
    listen 127.0.0.1:${httpsPort} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    location / { default_type application/json; return 200 '${BODY}'; }
  }
}
`,
  );
  return file;
}

/** Writes the one-worker reverse proxy's config; returns its path. */
export function proxyConfig(dir: string, upstream: string, httpPort: number, httpsPort: number, tls: TlsFiles): string {
  const file = path.join(dir, 'nginx.conf');
  const origin = new URL(upstream);
  writeFileSync(
    file,
    `${common(dir)}
  upstream bench {
    server ${origin.host};
    keepalive 128;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${httpPort};
    listen 127.0.0.1:${httpsPort} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  return file;
}
