// A call site of the service's TypeScript types (openapi-typescript) through openapi-fetch: every operation
// kind, a 422 and a 404 read as ErrorResponse, the admin routes with the token. Type-checked by tsc --strict,
// then run against a service serving esmm and esam with CTR_ADMIN_TOKEN set (it unloads and loads esam):
//
//   mkdir /tmp/gen-ts && cd /tmp/gen-ts && npm init -y && npm install openapi-typescript@7.13.0 \
//     openapi-fetch@0.17.0 typescript@5.9.3 @types/node@20
//   curl -s http://127.0.0.1:8000/openapi.json > openapi.json
//   npx openapi-typescript openapi.json --default-non-nullable false -o api.d.ts
//   cp <this repository>/reports/generated_clients.ts call.ts
//   npx tsc --strict --target es2022 --module commonjs --types node call.ts && node call.js http://127.0.0.1:8000 <token>
//
// openapi-typescript 7 reads a property with a default (ScoreRequest.versions, SimilarityRequest.items and k,
// InferInput.parameters) as always present unless told --default-non-nullable false: without it a request
// body leaving them out does not type-check. V2 infer's 200 is a union of the JSON answer and the binary
// extension's bytes (a string), narrowed here.
import createClient from "openapi-fetch";
import { readFileSync } from "node:fs";
import type { components, operations, paths } from "./api";

type ErrorResponse = components["schemas"]["ErrorResponse"];
type Example<Operation extends keyof operations> = operations[Operation] extends {
  requestBody: { content: { "application/json": infer Body } };
}
  ? Body
  : never;

const [url, token] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl: url });
const admin = { Authorization: `Bearer ${token}` };
const document = JSON.parse(readFileSync("openapi.json", "utf8"));
const example = <Operation extends keyof operations>(path: string): Example<Operation> =>
  document.paths[path].post.requestBody.content["application/json"].example;

function said(label: string, status: number, shown: unknown): void {
  console.log(label, status, JSON.stringify(shown).slice(0, 120));
}

async function main(): Promise<void> {
  const body = example<"score">("/v1/score");
  const scored = await client.POST("/v1/score", { body });
  said("score", scored.response.status, scored.data?.scores[0].pctr);
  const refused = await client.POST("/v1/score", { body: { candidates: [{ ad_price: "cheap" }] } });
  const error: ErrorResponse | undefined = refused.error;
  said("score, a bad ad_price", refused.response.status, error);
  const similar = await client.POST("/v1/similarity", { body: example<"similarity">("/v1/similarity") });
  said("similarity", similar.response.status, similar.data?.items?.map((item) => item.id));
  const tensors = example<"infer">("/v2/models/{name}/infer");
  const inferred = await client.POST("/v2/models/{name}/infer", { params: { path: { name: "esmm" } }, body: tensors });
  if (typeof inferred.data !== "string") said("infer", inferred.response.status, inferred.data?.outputs[0].data);
  const pinned = await client.POST("/v2/models/{name}/versions/{version}/infer", {
    params: { path: { name: "esmm", version: "1" } },
    body: tensors,
  });
  if (typeof pinned.data !== "string") said("infer_version", pinned.response.status, pinned.data?.model_version);
  const missing = await client.GET("/v2/models/{name}", { params: { path: { name: "nope" } } });
  said("model_metadata, no such model", missing.response.status, missing.error);
  const models = await client.GET("/v1/models");
  said("list_models", models.response.status, models.data?.models.map((model) => `${model.name}:${model.version}`));
  const statistics = await client.GET("/v2/models/stats");
  said("all_statistics", statistics.response.status, statistics.data?.model_stats[0].last_inference);
  const index = await client.GET("/");
  said("service_index", index.response.status, index.data?.routes.length);
  const live = await client.GET("/v2/health/live");
  said("live", live.response.status, live.data?.live);
  const metrics = await client.GET("/metrics", { parseAs: "text" });
  said("metrics", metrics.response.status, typeof metrics.data);
  const listed = await client.POST("/v2/repository/index", { body: { ready: true }, headers: admin });
  said("repository index", listed.response.status, listed.data?.map((model) => model.name));
  const esam = { params: { path: { name: "esam" } }, headers: admin };
  const unloaded = await client.POST("/v2/repository/models/{name}/unload", esam);
  said("unload", unloaded.response.status, unloaded.data);
  const loaded = await client.POST("/v2/repository/models/{name}/load", esam);
  said("load", loaded.response.status, loaded.data);
  const anonymous = await client.POST("/v2/repository/models/{name}/load", { params: { path: { name: "esam" } } });
  said("load, no token", anonymous.response.status, anonymous.error);
}

main();
