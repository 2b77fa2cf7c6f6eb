/**
 * Install size: what `npm i <package>` puts on disk in an empty folder, for our user-facing
 * packages and for the peers the packaging issue compares the SDK with.
 *
 * Ours: every workspace package they need is packed (`npm pack`, from the `npm run build` output),
 * and each user-facing package is installed from its tarball plus the tarballs of the workspace
 * packages it depends on (they are not published), into a new folder in os.tmpdir(). The peers are
 * installed the same way from the registry, at the version its `latest` tag names during the run.
 * Every install is `npm install --ignore-scripts --no-audit --no-fund --prefer-offline` (from the
 * npm cache when it has the packages). Measured: `du -sk node_modules` (disk usage), the regular
 * files in it and their apparent size, the packages in it, each top-level package's `du`, and the
 * package's own tarball (`npm pack --json`).
 */
import { execFile } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './common.js';

/** Our user-facing packages, in the order the report lists them. */
export const OUR_PACKAGES = [
  '@voice-bot/sdk',
  '@voice-bot/widget',
  '@voice-bot/stt-whisper',
  '@voice-bot/relay',
] as const;

/** The peers of the packaging issue, installed from the registry (latest). */
export const PEER_PACKAGES = ['@vapi-ai/web', 'livekit-client', '@elevenlabs/client'] as const;

/** The issue's target for `npm i @voice-bot/sdk`, in MB of 2^20 bytes (as `du -sh` counts). */
export const SDK_TARGET_MB = 30;

/**
 * The peers' figures measured before this part existed (`npm i --ignore-scripts` into an empty
 * folder, `du -sh node_modules`, which rounds up to whole MB). Shown only for reference, and as the
 * comparison when a run cannot reach the registry.
 */
export const EARLIER_PEER_MB: Record<string, number> = {
  '@vapi-ai/web': 24,
  'livekit-client': 36,
  '@elevenlabs/client': 41,
};

export const NPM_INSTALL_FLAGS = [
  '--ignore-scripts',
  '--no-audit',
  '--no-fund',
  '--prefer-offline',
];

export interface TarballInfo {
  file: string;
  /** the .tgz itself */
  bytes: number;
  /** the files in it, unpacked (npm's `unpackedSize`) */
  unpackedBytes: number;
  entries: number;
  /** the package's own largest files */
  largestFiles: { path: string; bytes: number }[];
}

export interface InstallMeasure {
  name: string;
  kind: 'ours' | 'peer';
  version: string | undefined;
  /** what was passed to `npm install` (tarball file names, or `name@version`) */
  installed: string[];
  tarball: TarballInfo | undefined;
  /** `du -sk node_modules` */
  diskKb: number;
  /** regular files under node_modules (`find node_modules -type f`) and their summed size */
  files: number;
  apparentBytes: number;
  /** package folders under node_modules, nested ones included */
  packages: number;
  /** the largest top-level packages of node_modules (`du -sk` each), largest first */
  top: { name: string; kb: number }[];
  installS: number;
  /** peers: 'registry' normally; 'cache' when the registry was unreachable and npm's cache had it */
  source?: 'registry' | 'cache';
  error?: string;
}

export interface InstallReport {
  npm: string;
  registry: { url: string; reachable: boolean; error?: string };
  /** the flags of every install (`--offline` added when the registry was unreachable) */
  flags: string[];
  targetMb: number;
  earlierPeerMb: Record<string, number>;
  ours: InstallMeasure[];
  peers: InstallMeasure[];
  packS: number;
  elapsedS: number;
}

interface Run {
  stdout: string;
  stderr: string;
}

/** npm's environment without what `npm run` exported about this repository. */
function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env))
    if (/^npm_(config_local_prefix|config_workspaces?|package_|lifecycle_)/i.test(key))
      delete env[key];
  return env;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd, timeout: timeoutMs, maxBuffer: 64 * 2 ** 20, env: npmEnv() },
      (error, stdout, stderr) => {
        if (error) {
          // npm's own account, without its code/syscall/errno and log-file lines
          const detail = stderr
            .split('\n')
            .filter(
              (l) =>
                /^npm error \S/.test(l) &&
                !/^npm error (code|syscall|errno|path) |^npm error }|A complete log|behind a proxy/.test(
                  l,
                ),
            )
            .map((l) => l.replace(/^npm error\s*/, ''))
            .slice(0, 2)
            .join(' ')
            .trim();
          reject(new Error(`${cmd} ${args[0] ?? ''}: ${detail || error.message}`));
        } else resolve({ stdout, stderr });
      },
    );
  });
}

interface Workspace {
  name: string;
  dir: string;
  /** workspace packages it needs installed next to it: dependencies and non-optional peers */
  needs: string[];
}

function workspaces(): Map<string, Workspace> {
  const root = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    workspaces: string[];
  };
  const all = root.workspaces.map((dir) => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    const peers = Object.keys(pkg.peerDependencies ?? {}).filter(
      (name) => !pkg.peerDependenciesMeta?.[name]?.optional,
    );
    return { name: pkg.name, dir, needs: [...Object.keys(pkg.dependencies ?? {}), ...peers] };
  });
  const names = new Set(all.map((w) => w.name));
  return new Map(
    all.map((w) => [w.name, { ...w, needs: w.needs.filter((name) => names.has(name)) }]),
  );
}

/** `name` and every workspace package it needs, transitively; `name` first. */
function closure(ws: Map<string, Workspace>, name: string): string[] {
  const out: string[] = [];
  const visit = (n: string) => {
    if (out.includes(n)) return;
    const w = ws.get(n);
    if (!w) throw new Error(`${n} is not a workspace package`);
    out.push(n);
    w.needs.forEach(visit);
  };
  visit(name);
  return out;
}

interface PackJson {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  version: string;
  files: { path: string; size: number }[];
}

function tarballInfo(p: PackJson): TarballInfo {
  return {
    file: p.filename,
    bytes: p.size,
    unpackedBytes: p.unpackedSize,
    entries: p.entryCount,
    largestFiles: p.files
      .slice()
      .sort((a, b) => b.size - a.size)
      .slice(0, 3)
      .map((f) => ({ path: f.path, bytes: f.size })),
  };
}

async function pack(
  spec: string,
  cwd: string,
  dest: string,
  extraFlags: string[] = [],
): Promise<PackJson> {
  const { stdout } = await run(
    'npm',
    ['pack', spec, '--json', '--prefer-offline', ...extraFlags, '--pack-destination', dest],
    cwd,
    120_000,
  );
  const parsed = JSON.parse(stdout.slice(stdout.indexOf('['))) as PackJson[];
  if (!parsed[0]) throw new Error(`npm pack ${spec}: no output`);
  return parsed[0];
}

/** Regular files under `dir` (symlinks not followed) and their summed size; package folders. */
function walk(dir: string): { files: number; bytes: number; packages: number } {
  let files = 0;
  let bytes = 0;
  let packages = 0;
  const visit = (d: string, inNodeModules: boolean) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        if (inNodeModules && entry.name.startsWith('@')) {
          for (const scoped of readdirSync(path, { withFileTypes: true }))
            if (scoped.isDirectory()) packages++;
          visit(path, false);
        } else {
          if (inNodeModules && entry.name !== '.bin') packages++;
          visit(path, entry.name === 'node_modules');
        }
      } else if (entry.isFile()) {
        files++;
        bytes += lstatSync(path).size;
      }
    }
  };
  visit(dir, true);
  return { files, bytes, packages };
}

/** `du -sk` of node_modules and of each top-level package in it. */
async function diskUsage(
  nodeModules: string,
): Promise<{ totalKb: number; top: { name: string; kb: number }[] }> {
  const names: string[] = [];
  for (const entry of readdirSync(nodeModules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === '.bin') continue;
    if (entry.name.startsWith('@'))
      for (const scoped of readdirSync(join(nodeModules, entry.name), { withFileTypes: true }))
        names.push(`${entry.name}/${scoped.name}`);
    else names.push(entry.name);
  }
  const parse = (out: string) =>
    out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [kb, ...path] = line.split('\t');
        return { path: path.join('\t'), kb: Number(kb) };
      });
  const total = parse(
    (await run('du', ['-sk', 'node_modules'], join(nodeModules, '..'), 60_000)).stdout,
  );
  const each =
    names.length > 0
      ? parse((await run('du', ['-sk', '--', ...names], nodeModules, 60_000)).stdout)
      : [];
  return {
    totalKb: total[0]?.kb ?? Number.NaN,
    top: each
      .map((e) => ({ name: e.path, kb: e.kb }))
      .sort((a, b) => b.kb - a.kb)
      .slice(0, 8),
  };
}

/** Installs `specs` into a new empty folder and measures its node_modules. */
async function installAndMeasure(
  base: string,
  name: string,
  specs: string[],
  extraFlags: string[] = [],
): Promise<Omit<InstallMeasure, 'name' | 'kind' | 'installed' | 'tarball'>> {
  const dir = mkdtempSync(join(base, `${name.replace(/[^a-z0-9]+/gi, '-')}-`));
  // An empty project: without a package.json npm would look for one in the folders above.
  writeFileSync(join(dir, 'package.json'), '{ "name": "install-size", "private": true }\n');
  const started = performance.now();
  await run('npm', ['install', ...NPM_INSTALL_FLAGS, ...extraFlags, ...specs], dir, 300_000);
  const installS = (performance.now() - started) / 1000;
  const nodeModules = join(dir, 'node_modules');
  const du = await diskUsage(nodeModules);
  const w = walk(nodeModules);
  const installed = JSON.parse(readFileSync(join(nodeModules, name, 'package.json'), 'utf8')) as {
    version?: string;
  };
  rmSync(dir, { recursive: true, force: true });
  return {
    version: installed.version,
    diskKb: du.totalKb,
    files: w.files,
    apparentBytes: w.bytes,
    packages: w.packages,
    top: du.top,
    installS,
  };
}

const failed = (
  name: string,
  kind: 'ours' | 'peer',
  installed: string[],
  error: unknown,
): InstallMeasure => ({
  name,
  kind,
  version: undefined,
  installed,
  tarball: undefined,
  diskKb: Number.NaN,
  files: 0,
  apparentBytes: 0,
  packages: 0,
  top: [],
  installS: Number.NaN,
  error: (error as Error).message,
});

export interface InstallOptions {
  ours?: readonly string[];
  peers?: readonly string[];
  log?: (line: string) => void;
}

export async function measureInstall(options: InstallOptions = {}): Promise<InstallReport> {
  const log = options.log ?? (() => {});
  const oursWanted = options.ours ?? OUR_PACKAGES;
  const peersWanted = options.peers ?? PEER_PACKAGES;
  const started = performance.now();
  const ws = workspaces();
  for (const name of oursWanted) {
    const w = ws.get(name);
    if (!w) throw new Error(`${name} is not a workspace package`);
  }
  const needed = [...new Set(oursWanted.flatMap((name) => closure(ws, name)))];
  for (const name of needed) {
    const dir = join(REPO_ROOT, ws.get(name)!.dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      exports?: Record<string, { default?: string }>;
      main?: string;
    };
    const entry = pkg.exports?.['.']?.default ?? pkg.main ?? './dist/index.js';
    try {
      lstatSync(join(dir, entry));
    } catch {
      throw new Error(`${name}: ${entry} is missing: run npm run build first`);
    }
  }

  const base = mkdtempSync(join(tmpdir(), 'voicebot-install-size-'));
  const npmVersion = (await run('npm', ['--version'], base, 30_000)).stdout.trim();
  const registryUrl = (await run('npm', ['config', 'get', 'registry'], base, 30_000)).stdout.trim();
  try {
    const packs = join(base, 'packs');
    mkdirSync(packs);
    const packStarted = performance.now();
    const packed = new Map<string, PackJson>();
    for (const name of needed) {
      packed.set(name, await pack('.', join(REPO_ROOT, ws.get(name)!.dir), packs));
    }
    const packS = (performance.now() - packStarted) / 1000;
    log(
      `  packed ${needed.length} workspace packages in ${packS.toFixed(1)} s: ${needed
        .map((n) => `${n} ${((packed.get(n)?.size ?? 0) / 2 ** 20).toFixed(2)} MB`)
        .join(', ')}`,
    );

    // The registry: reachable? (`npm ping`, no retries, so an offline run does not wait minutes.)
    // Without it npm's cache is the only source for ours and the peers alike: `--offline` then
    // fails fast on what the cache does not hold, where `--prefer-offline` would retry for minutes.
    const quickFetch = ['--fetch-retries=0', '--fetch-timeout=15000'];
    let registry: InstallReport['registry'] = { url: registryUrl, reachable: true };
    try {
      await run('npm', ['ping', ...quickFetch], base, 30_000);
    } catch (error) {
      registry = { url: registryUrl, reachable: false, error: (error as Error).message };
      log(
        `  registry ${registryUrl} unreachable (installing from the npm cache): ${registry.error}`,
      );
    }
    const extra = registry.reachable ? [] : ['--offline'];

    const ours: InstallMeasure[] = [];
    for (const name of oursWanted) {
      const names = closure(ws, name);
      const files = names.map((n) => packed.get(n)!.filename);
      try {
        const m = await installAndMeasure(
          base,
          name,
          files.map((f) => join(packs, f)),
          extra,
        );
        ours.push({
          ...m,
          name,
          kind: 'ours',
          installed: files,
          tarball: tarballInfo(packed.get(name)!),
        });
        log(
          `  ${name}: ${(m.diskKb / 1024).toFixed(1)} MB on disk, ${m.files} files, ${m.packages} packages (${m.installS.toFixed(1)} s)`,
        );
      } catch (error) {
        ours.push(failed(name, 'ours', files, error));
        log(`  ${name}: failed: ${(error as Error).message}`);
      }
    }

    const peers: InstallMeasure[] = [];
    const peerPacks = join(base, 'peer-packs');
    mkdirSync(peerPacks);
    for (const name of peersWanted) {
      let spec = name;
      try {
        if (registry.reachable) {
          const latest = (
            await run(
              'npm',
              ['view', name, 'version', '--prefer-online', ...quickFetch],
              base,
              60_000,
            )
          ).stdout.trim();
          if (!/^\d+\.\d+\.\d+/.test(latest))
            throw new Error(`npm view ${name} version: "${latest}"`);
          spec = `${name}@${latest}`;
        }
        const m = await installAndMeasure(base, name, [spec], extra);
        const version = m.version;
        let tarball: TarballInfo | undefined;
        try {
          tarball = tarballInfo(
            await pack(version ? `${name}@${version}` : spec, base, peerPacks, extra),
          );
        } catch {
          // the install figures stand without it
        }
        peers.push({
          ...m,
          name,
          kind: 'peer',
          version,
          installed: [spec],
          tarball,
          source: registry.reachable ? 'registry' : 'cache',
        });
        log(
          `  ${name}@${version}: ${(m.diskKb / 1024).toFixed(1)} MB on disk, ${m.files} files, ${m.packages} packages (${m.installS.toFixed(1)} s)`,
        );
      } catch (error) {
        peers.push({
          ...failed(name, 'peer', [spec], error),
          source: registry.reachable ? 'registry' : 'cache',
        });
        log(`  ${name}: failed: ${(error as Error).message}`);
      }
    }
    return {
      npm: npmVersion,
      registry,
      flags: [...NPM_INSTALL_FLAGS, ...extra],
      targetMb: SDK_TARGET_MB,
      earlierPeerMb: EARLIER_PEER_MB,
      ours,
      peers,
      packS,
      elapsedS: (performance.now() - started) / 1000,
    };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
