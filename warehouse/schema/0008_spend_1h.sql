-- Hourly spend and margin per customer × API key × class × router: what
-- analysts read for margin per customer, class and day, and what budgets
-- are counted against. Summed from every request (refused and failed ones
-- included: a failure may have been paid for). Margin is sum(charge) −
-- sum(cost).
-- Read with sum(), e.g.
--   SELECT toDate(hour) AS day, customer, sum(charge) - sum(cost) AS margin
--   FROM spend_1h GROUP BY day, customer
CREATE TABLE IF NOT EXISTS {{table "spend_1h"}}
(
    hour        DateTime('UTC'),
    customer    {{lc}},
    api_key_id  {{lc}},
    capability  {{lc}},
    model       {{lc}},
    gateway_id  {{lc}},
    requests    UInt64,
    ok_requests UInt64,
    units       Int64,
    cost        Float64,
    charge      Float64
)
ENGINE = {{engine "SummingMergeTree" "spend_1h"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, customer, api_key_id, capability, model, gateway_id)
{{- settings "dedup"}}{{distributed "spend_1h" "rand()"}};

-- Fed by every block inserted into requests, and only by those: rows the
-- writer skips as duplicates never reach the rollup.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.spend_1h_mv{{onCluster}} TO {{local "spend_1h"}} AS
SELECT
    toStartOfHour({{minute "start_time"}}) AS hour,
    customer,
    api_key_id,
    capability,
    model,
    gateway_id,
    count() AS requests,
    sum(toUInt64(status = 'ok')) AS ok_requests,
    sum(if(status = 'ok', units, 0)) AS units,
    sum(cost) AS cost,
    sum(charge) AS charge
FROM {{local "requests"}}
GROUP BY hour, customer, api_key_id, capability, model, gateway_id;
