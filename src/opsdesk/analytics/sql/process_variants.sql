-- Variants: the distinct activity sequences of cases, with how many cases follow each.
-- A case's sequence is keyed by XOR-ing a hash of each (position, activity) pair, which
-- needs no per-case sort (two different sequences share a 64-bit key with odds of about
-- variants^2 / 2^65); the readable sequence is then built for one example case per key.
WITH traces AS (
    SELECT case_key, BIT_XOR(HASH(CAST(pos AS VARCHAR) || '|' || activity)) AS variant_key
    FROM steps
    GROUP BY case_key
),
kinds AS (
    SELECT variant_key, COUNT(*) AS cases, MIN(case_key) AS example
    FROM traces
    GROUP BY variant_key
)
SELECT STRING_AGG(s.activity, ' > ' ORDER BY s.pos) AS variant, MIN(k.cases) AS cases
FROM kinds AS k
INNER JOIN steps AS s ON s.case_key = k.example
GROUP BY k.variant_key
ORDER BY cases DESC, variant
