/*
 * json.h — a small, strict JSON reader (RFC 8259) for the conformance
 * vectors: the whole text becomes a tree of json_value, or NULL with a
 * message saying where (line:column) and what is wrong. No JSON library is
 * needed to read the vectors of data/ from C.
 *
 * Strict: no comments, no trailing commas, no NaN/Infinity literals, no
 * leading zeros, no duplicate keys in an object, no control characters in
 * strings, valid UTF-8 escapes only (\uXXXX with paired surrogates), nothing
 * after the value, no bytes that are not UTF-8. A number too large for a
 * double (1e400) is an error. Nesting deeper than JSON_MAX_DEPTH and
 * objects of more than JSON_MAX_MEMBERS members are errors (the limits keep
 * every input cheap: no stack overflow, no quadratic duplicate search).
 */
#ifndef BNV_JSON_H
#define BNV_JSON_H

#include <stddef.h>

#define JSON_MAX_DEPTH 64
#define JSON_MAX_MEMBERS 4096

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    int line;                       /* where the value starts, for messages */
    union {
        int boolean;
        double number;
        struct { char *s; size_t len; } string;              /* NUL-terminated UTF-8 */
        struct { json_value *items; size_t n; } array;
        struct { char **keys; json_value *values; size_t n; } object;
    } u;
};

/* Parses text[0..len). Returns the root (free it with json_free) or NULL
 * with a message in err ("line 3, column 14: expected ',' or ']'"). */
json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);

/* Reads and parses a file (at most 64 MiB); NULL with a message on error. */
json_value *json_parse_file(const char *path, char *err, size_t errlen);

void json_free(json_value *v);

/* The member `key` of an object, or NULL (also when obj is not an object). */
const json_value *json_get(const json_value *obj, const char *key);

/* "null", "boolean", "number", "string", "array", "object" */
const char *json_type_name(json_type t);

#endif
