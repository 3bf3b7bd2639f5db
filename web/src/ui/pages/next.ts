/** Where to go after signing in: `?next=/r/abc` when it is a path on this site, else home. */
export function nextPath(search: string = window.location.search): string {
  const next = new URLSearchParams(search).get("next");
  return next !== null && /^\/(?![/\\])/.test(next) ? next : "/";
}
