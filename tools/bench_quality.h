// sieve-bench quality and eval: answer quality against document length.
//
//   sieve-bench quality --model DIR [--lengths 1024,2048,8192,32768] [--depths 0,0.25,0.5,0.75,1]
//                       [--samples N] [--modes full,truncated,parallel,parallelcomp_k1,...]
//                       [--out results.json] [--png heatmap.png] [--device D]
//     Pass-key retrieval (the InfiniteBench task): a haystack of filler sentences with the needle
//     "The pass key is 58213. Remember it. 58213 is the pass key." at a depth, the query "What is
//     the pass key? The pass key is", correct when the key appears in the first 8 generated
//     tokens. Modes: full (plain full attention), truncated (the first and last halves of the
//     model's trained window, full attention), parallel (every chunk), parallelcomp_k1,
//     parallelcomp_k3, compress (k=3 plus kv_capacity 128), calibrate (k=3 plus the paper's
//     calibration recipe scaled to the model's depth: first quarter of layers middle, second
//     recent, last sink). Prints a table, writes JSON, and a PNG heatmap of length × depth per
//     mode.
//   sieve-bench eval --model DIR --data FILE.jsonl [--metric auto|em|contains|f1] [--limit N]
//                    [--query-template "...{input}..."] [--mode ...] [--keep-chunks K]
//     LongBench-style ({"context", "input", "answers": [...]}) and InfiniteBench-style
//     ({"context", "input", "answer": "..." | [...]}) records; exact match / contains for
//     retrieval answers, token F1 (SQuAD normalization) for QA; "auto" picks contains when every
//     answer is a single word or number, F1 otherwise.
//
// Tested by tests/cli/quality_test.sh (eval metrics on small files; quality on tiny sizes).
#pragma once

#include "tools/cli.h"

namespace sieve::tools {

int QualityMain(const Args& args);
int EvalMain(const Args& args);

// Token-level F1 between a prediction and a reference after SQuAD-style normalization
// (lowercase, punctuation and articles removed, whitespace collapsed).
double AnswerF1(const std::string& prediction, const std::string& reference);
// Normalized exact match, and "the normalized reference occurs in the normalized prediction".
bool AnswerExact(const std::string& prediction, const std::string& reference);
bool AnswerContains(const std::string& prediction, const std::string& reference);

}  // namespace sieve::tools
