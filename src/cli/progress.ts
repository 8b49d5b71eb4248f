import cliProgress from "cli-progress";
import { DownloadProgress } from "../store/download.js";
import { formatBytes, formatDuration } from "./format.js";

type PartProgress = DownloadProgress & { part: number; parts: number };

/**
 * Pull progress on stderr: a bar with bytes, speed and ETA on a terminal; otherwise a plain line at
 * most every 10% or 5 seconds, so logs stay readable.
 */
export function pullProgress(stream: NodeJS.WriteStream = process.stderr): { onProgress: (p: PartProgress) => void; stop: () => void } {
  let current: { key: string; started: number; bar?: cliProgress.SingleBar; lastLine: number; lastPercent: number } | undefined;
  const label = (p: PartProgress): string => (p.parts > 1 ? `${p.file} (part ${p.part}/${p.parts})` : p.file);
  const figures = (p: PartProgress, started: number): { speed: number; eta: number } => {
    const seconds = (performance.now() - started) / 1000;
    const speed = seconds > 0 ? (p.received - p.resumedFrom) / seconds : 0;
    return { speed, eta: speed > 0 ? (p.total - p.received) / speed : Infinity };
  };
  const finish = (): void => {
    current?.bar?.stop();
    current = undefined;
  };
  const onProgress = (p: PartProgress): void => {
    const key = `${p.part}:${p.file}`;
    if (current?.key !== key) {
      finish();
      current = { key, started: performance.now(), lastLine: 0, lastPercent: -1 };
      if (p.resumedFrom > 0 && p.resumedFrom < p.total) stream.write(`resuming ${label(p)} at ${formatBytes(p.resumedFrom)}\n`);
      if (stream.isTTY) {
        current.bar = new cliProgress.SingleBar(
          {
            stream,
            format: `pulling ${label(p)} {bar} {percentage}% | {done}/{size} | {speed} | ETA {etaText}`,
            hideCursor: true,
            barsize: 30,
          },
          cliProgress.Presets.shades_classic,
        );
        current.bar.start(p.total, p.received, { done: formatBytes(p.received), size: formatBytes(p.total), speed: "-", etaText: "-" });
      }
    }
    const { speed, eta } = figures(p, current.started);
    const payload = { done: formatBytes(p.received), size: formatBytes(p.total), speed: `${formatBytes(speed)}/s`, etaText: formatDuration(eta) };
    if (current.bar) {
      current.bar.update(p.received, payload);
      return;
    }
    const percent = p.total > 0 ? Math.floor((p.received / p.total) * 100) : 100;
    const now = performance.now();
    if (percent === 100 || percent >= current.lastPercent + 10 || now - current.lastLine > 5000) {
      if (percent === current.lastPercent) return;
      current.lastPercent = percent;
      current.lastLine = now;
      stream.write(`pulling ${label(p)}: ${percent}% (${payload.done} of ${payload.size}, ${payload.speed}, ETA ${payload.etaText})\n`);
    }
  };
  return { onProgress, stop: finish };
}

/** A count-of-items progress bar on a terminal; otherwise a plain line every 10%. */
export function itemProgress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): { update: (done: number, detail: string) => void; stop: () => void } {
  const bar = stream.isTTY
    ? new cliProgress.SingleBar({ stream, format: `${label} {bar} {value}/{total} {detail}`, hideCursor: true, barsize: 30 }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(total, 0, { detail: "" });
  let lastPercent = -10;
  return {
    update(done, detail) {
      if (bar) {
        bar.update(done, { detail });
        return;
      }
      const percent = Math.floor((done / total) * 100);
      if (percent >= lastPercent + 10 || done === total) {
        lastPercent = percent;
        stream.write(`${label}: ${done}/${total} (${percent}%) ${detail}\n`);
      }
    },
    stop: () => bar?.stop(),
  };
}
