import { usePath } from "./hooks/route";
import { AccountPage } from "./pages/AccountPage";
import { CallPage } from "./pages/CallPage";
import { HomePage } from "./pages/HomePage";
import { LoginPage } from "./pages/LoginPage";
import { NotAMeeting, NotFound } from "./pages/NotFound";
import { RegisterPage } from "./pages/RegisterPage";
import { RoomPage } from "./pages/RoomPage";
import { routeOf } from "./routes";
import "./styles/access.css";

/**
 * Routes (ui/routes.ts): `/`, `/r/<room>`, `/call`, `/login`, `/register`, `/account`; a room
 * link with an impossible id is "This link is not a meeting", anything else "Page not found".
 */
export function App() {
  const route = routeOf(usePath());
  switch (route.page) {
    case "home":
      return <HomePage />;
    case "room":
      return <RoomPage key={route.roomId} roomId={route.roomId} />;
    case "not-a-meeting":
      return <NotAMeeting />;
    case "call":
      return <CallPage />;
    case "login":
      return <LoginPage />;
    case "register":
      return <RegisterPage />;
    case "account":
      return <AccountPage />;
    case "not-found":
      return <NotFound />;
  }
}
