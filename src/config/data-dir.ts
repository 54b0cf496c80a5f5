/**
 * The data directory: where a gateway keeps what it writes (the embedded SQLite store, the audit journal, generated
 * keys, the admin key file). It belongs to the configuration, so every command pointed at the same config uses the
 * same directory whatever its current directory: `data_dir` in the file, relative to the file's directory (default
 * `.kycgate` next to it), overridden by KYCGATE_DATA_DIR. The built-in demo has no file: its base is the current
 * directory, so it keeps `./.kycgate`.
 */
import path from 'node:path';

export const DEFAULT_DATA_DIR = '.kycgate';

export function dataDirectory(
  config: { data_dir?: unknown } | undefined,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (env.KYCGATE_DATA_DIR) return path.resolve(env.KYCGATE_DATA_DIR);
  const configured = typeof config?.data_dir === 'string' ? config.data_dir : DEFAULT_DATA_DIR;
  return path.resolve(baseDir, configured);
}
