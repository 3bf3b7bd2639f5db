import { useEffect, useState } from "react";
import { checkConnection, type ConnectionCheck } from "../../room/check";

/** Run the connection check once when the page opens; re-renders with its outcome. */
export function useConnectionCheck(): ConnectionCheck {
  const [check, setCheck] = useState<ConnectionCheck>({ step: "checking" });
  useEffect(() => {
    let live = true;
    void checkConnection().then((outcome) => live && setCheck(outcome));
    return () => {
      live = false;
    };
  }, []);
  return check;
}
