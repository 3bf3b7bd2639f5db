import "bootstrap/dist/css/bootstrap.min.css";
import "./ui/app.css";
import { createRoot } from "react-dom/client";
import { App } from "./ui/App";

const root = document.getElementById("root");
if (root !== null) createRoot(root).render(<App />);
