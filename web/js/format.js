// Formatting of sizes, times and durations for display.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB"; binary units, as file managers and game panels show them. */
export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  let value = Number(n);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${value} B`;
  return `${value.toFixed(value >= 100 ? 0 : 1)} ${UNITS[unit]}`;
}

export function rate(bytesPerSecond) {
  if (!bytesPerSecond || bytesPerSecond <= 0 || !Number.isFinite(bytesPerSecond)) return null;
  return `${bytes(Math.round(bytesPerSecond))}/s`;
}

/** Seconds -> "2 min 5 s". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return null;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return m % 60 ? `${hrs} h ${m % 60} min` : `${hrs} h`;
  const days = Math.floor(hrs / 24);
  return `${days} d ${hrs % 24} h`;
}

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const STEPS = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];

/** "5 minutes ago", "yesterday", "just now". */
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const seconds = (Date.parse(iso) - now) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 45) return 'just now';
  for (const [unit, size] of STEPS) {
    if (abs >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(Math.round(seconds / 60), 'minute');
}

/**
 * How long until a time, in short words: "in 45 min", "in 3 h", "in 2 d"; "due now" once
 * it has come (a run that is about to start).
 */
export function until(iso, now = Date.now()) {
  if (!iso) return '—';
  const minutes = Math.round((Date.parse(iso) - now) / 60000);
  if (minutes <= 0) return 'due now';
  if (minutes < 60) return `in ${minutes} min`;
  const hrs = Math.round(minutes / 60);
  if (hrs < 48) return `in ${hrs} h`;
  return `in ${Math.round(hrs / 24)} d`;
}

const exactFormat = new Intl.DateTimeFormat('en-GB', {
  weekday: 'short', year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
});

/** The full date and time in the browser's time zone, e.g. "Wed 25 Nov 2026, 22:22:57 UTC". */
export function exact(iso) {
  if (!iso) return '';
  return exactFormat.format(new Date(iso));
}

/** What hoard names an unnamed backup created now: "Backup at 2023-10-20 14:30:00" (UTC). */
export function defaultBackupName(date = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `Backup at ${date.getUTCFullYear()}-${p(date.getUTCMonth() + 1)}-${p(date.getUTCDate())} `
    + `${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())}`;
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}
