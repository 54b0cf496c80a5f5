/**
 * Reloads configuration on SIGHUP (wired in the CLI) and when the config file changes. The directory is watched,
 * not the file, so editors that replace the file atomically are seen too; bursts of events are debounced.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';

export class ConfigWatcher {
  private readonly watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastDigest: string | undefined;

  constructor(private readonly file: string, private readonly onChange: () => void, logger: Logger, private readonly debounceMs = 200) {
    this.lastDigest = this.digest();
    const name = path.basename(file);
    try {
      this.watcher = watch(path.dirname(file), { persistent: false }, (_event, filename) => {
        if (filename === null || filename.toString() === name) this.schedule();
      });
      this.watcher.on('error', () => undefined);
    } catch (err) {
      logger.warn({ file, err: (err as Error).message }, 'cannot watch the config file; reload with SIGHUP');
    }
  }

  private digest(): string | undefined {
    try {
      return createHash('sha256').update(readFileSync(this.file)).digest('hex');
    } catch {
      return undefined;
    }
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // Touching the file or a partial write followed by the same content should not reload.
      const digest = this.digest();
      if (digest === undefined || digest === this.lastDigest) return;
      this.lastDigest = digest;
      this.onChange();
    }, this.debounceMs);
    this.timer.unref();
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
