/**
 * Watching files that are replaced rather than edited: certificates, keys and trust bundles. The directories are
 * watched, not the files, because an atomic rename ends a file watch; a Kubernetes secret or config-map volume
 * updates by renaming its `..data` symlink (the configured names are symlinks through it), so a `..` entry counts
 * as a change too. Callers debounce and re-check what they read.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export function watchFileDirectories(
  files: readonly string[],
  onChange: () => void,
  onWatchError: (dir: string, err: Error) => void,
): FSWatcher[] {
  const dirs = new Map<string, Set<string>>();
  for (const f of files) {
    const dir = path.dirname(f);
    let names = dirs.get(dir);
    if (names === undefined) dirs.set(dir, (names = new Set()));
    names.add(path.basename(f));
  }
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of dirs) {
    try {
      const w = watch(dir, { persistent: false }, (_event, filename) => {
        if (filename === null) return onChange();
        const name = filename.toString();
        if (names.has(name) || name.startsWith('..')) onChange();
      });
      w.on('error', () => undefined);
      watchers.push(w);
    } catch (err) {
      onWatchError(dir, err as Error);
    }
  }
  return watchers;
}
