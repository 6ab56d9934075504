import { describe, expect, it } from "vitest";
import { LoginPage } from "../src/pages/LoginPage";

describe("LoginPage", () => {
  it("is a component", () => {
    expect(typeof LoginPage).toBe("function");
  });
});
