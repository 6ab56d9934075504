// Thin fetch wrapper around the CODITECT Cloud API (the Prism mock in development).
const baseUrl: string = import.meta.env.VITE_API_URL ?? "http://localhost:4010";

export async function login(email: string, password: string): Promise<string> {
  const response = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) {
    throw new Error(`login failed: ${response.status}`);
  }
  return (await response.json()).access_token;
}
