/**
 * The app's pages by path, as a pure function (App.tsx renders them). A room link whose id
 * is not a room id (`[A-Za-z0-9_-]{1,64}` once percent-decoded, as the server checks) is
 * "not a meeting", not the home page; any other unknown path is "not found".
 */

export type Route =
  | { readonly page: "home" }
  | { readonly page: "room"; readonly roomId: string }
  | { readonly page: "not-a-meeting" }
  | { readonly page: "call" }
  | { readonly page: "login" }
  | { readonly page: "register" }
  | { readonly page: "account" }
  | { readonly page: "not-found" };

/** The server's room id rule (src/salon/core/validate.py `ROOM_ID`). */
export const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;

const PAGES: Readonly<Record<string, Route>> = {
  "/": { page: "home" },
  "/call": { page: "call" },
  "/login": { page: "login" },
  "/register": { page: "register" },
  "/account": { page: "account" },
};

/** The page for `pathname` (as `location.pathname` gives it: percent-encoded). */
export function routeOf(pathname: string): Route {
  const path = pathname.length > 1 && pathname.endsWith("/") ? pathname.slice(0, -1) : pathname;
  if (path === "/r" || path.startsWith("/r/")) {
    const raw = path.slice("/r/".length);
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      return { page: "not-a-meeting" }; // "/r/%%%": not even a valid escape
    }
    return ROOM_ID.test(id) ? { page: "room", roomId: id } : { page: "not-a-meeting" };
  }
  return PAGES[path] ?? { page: "not-found" };
}
