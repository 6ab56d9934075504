import { useState } from "react";
import { LoginPage } from "./pages/LoginPage";

export function App() {
  const [token, setToken] = useState<string | null>(null);
  return token ? <p>Signed in</p> : <LoginPage onLogin={setToken} />;
}
