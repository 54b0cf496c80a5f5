/**
 * Reloads configuration on SIGHUP (wired in the CLI) and when the config file changes. The directory is watched
 * with the shared watcher for replaced files (editors that replace the file atomically, Kubernetes config-map
 * volumes that swap their `..data` link); bursts of events are debounced and only a changed digest reloads.
 */
import { readFileSync, type FSWatcher } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { watchFileDirectories } from '../shared/file-watch.js';

export class ConfigWatcher {
  private readonly watchers: FSWatcher[];
  private timer: NodeJS.Timeout | undefined;
  private lastDigest: string | undefined;

  constructor(
    private readonly file: string,
    private readonly onChange: () => void,
    logger: Logger,
    private readonly debounceMs = 200,
  ) {
    this.lastDigest = this.digest();
    this.watchers = watchFileDirectories(
      [file],
      () => this.schedule(),
      (_dir, err) => {
        logger.warn({ file, err: err.message }, 'cannot watch the config file; reload with SIGHUP');
      },
    );
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
    for (const w of this.watchers) w.close();
  }
}
