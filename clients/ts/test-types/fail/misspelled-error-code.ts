// Error codes are a union too: a misspelled code is a compile error.
import { isKvError } from "kv-client";

declare const error: unknown;
if (isKvError(error, "CONFLICTED")) throw error;
