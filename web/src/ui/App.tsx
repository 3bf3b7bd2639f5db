import { usePath } from "./hooks/route";
import { CallPage } from "./pages/CallPage";
import { HomePage } from "./pages/HomePage";
import { RoomPage } from "./pages/RoomPage";

/** Routes: `/`, `/r/<room>`, `/call`. */
export function App() {
  const path = usePath();
  const room = /^\/r\/([A-Za-z0-9_-]{1,64})\/?$/.exec(path)?.[1];
  if (room !== undefined) return <RoomPage key={room} roomId={room} />;
  if (path === "/call") return <CallPage />;
  return <HomePage />;
}
