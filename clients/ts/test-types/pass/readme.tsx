// The React example of docs/typescript.md, compiled as it is shown there.
import { createKvClient } from "kv-client";
import { useKv } from "kv-client/react";

import type { SiteBannerTable } from "../../test/bindings/tables.js";

// docs/typescript.md: begin
const site = createKvClient<SiteBannerTable>("/api/kv/site");

export function Banner({ admin }: { admin: boolean }) {
  const { data, error, update } = useKv(site, "banner");
  const hide = () => update({ active: false, message: "" }, { expectedUpdatedAt: data?.updated_at ?? null });
  return (
    <div>
      {data?.value.active && <p role="status">{data.value.message}</p>}
      {admin && <button onClick={() => hide().catch(() => {})}>Hide the banner</button>}
      {error?.code === "CONFLICT" && <p>Someone else changed it first: try again.</p>}
    </div>
  );
}
// docs/typescript.md: end
