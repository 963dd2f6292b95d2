import type { NewPolicyVersion, PolicyStore, PolicyVersion } from '../../../src/core/ports.js';

/** The policy versions in memory, as the SQL store keeps them (one process: no lock needed). */
export function memoryPolicyStore(clock: { now(): number } = Date): PolicyStore {
  const versions: Omit<PolicyVersion, 'active'>[] = [];
  let activeVersion: number | undefined;
  const withActive = (v: Omit<PolicyVersion, 'active'>): PolicyVersion => ({
    ...v,
    active: v.version === activeVersion,
  });
  const active = (): PolicyVersion | undefined => {
    const v = versions.find((x) => x.version === activeVersion);
    return v === undefined ? undefined : withActive(v);
  };
  const insert = (set: NewPolicyVersion): PolicyVersion => {
    const stored = {
      version: versions.length + 1,
      digest: set.digest,
      files: { ...set.files },
      policyIds: [...set.policyIds],
      createdBy: set.createdBy,
      createdAt: new Date(clock.now()),
    };
    versions.push(stored);
    activeVersion = stored.version;
    return withActive(stored);
  };
  return {
    active: () => Promise.resolve(active()),
    seed: (set) => Promise.resolve(active() ?? insert(set)),
    store(set) {
      const from = active();
      if (from !== undefined && from.digest === set.digest) return Promise.resolve({ from, to: from, changed: false });
      return Promise.resolve({ from, to: insert(set), changed: true });
    },
    activate(version) {
      const from = active();
      if (!versions.some((v) => v.version === version)) return Promise.resolve(undefined);
      activeVersion = version;
      return Promise.resolve({ from, to: active() as PolicyVersion });
    },
    get(version) {
      const v = versions.find((x) => x.version === version);
      return Promise.resolve(v === undefined ? undefined : withActive(v));
    },
    list: () =>
      Promise.resolve(
        [...versions].reverse().map(({ files: _files, ...v }) => ({ ...v, active: v.version === activeVersion })),
      ),
  };
}
