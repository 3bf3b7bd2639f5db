import { usePath } from "./hooks/route";
import { AccountPage } from "./pages/AccountPage";
import { CallPage } from "./pages/CallPage";
import { HomePage } from "./pages/HomePage";
import { LoginPage } from "./pages/LoginPage";
import { RegisterPage } from "./pages/RegisterPage";
import { RoomPage } from "./pages/RoomPage";

/** Routes: `/`, `/r/<room>`, `/call`, `/login`, `/register`, `/account`. */
export function App() {
  const path = usePath();
  const room = /^\/r\/([A-Za-z0-9_-]{1,64})\/?$/.exec(path)?.[1];
  if (room !== undefined) return <RoomPage key={room} roomId={room} />;
  if (path === "/call") return <CallPage />;
  if (path === "/login") return <LoginPage />;
  if (path === "/register") return <RegisterPage />;
  if (path === "/account") return <AccountPage />;
  return <HomePage />;
}
