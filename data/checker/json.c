/*
 * json.c — the strict JSON reader of json.h: recursive descent over a byte
 * buffer of known length (NUL bytes in it are errors, not ends), with
 * explicit limits instead of trust. Every error frees what was built.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

typedef struct {
    const char *p, *end, *line_start;
    int line, depth;
    char *err;
    size_t errlen;
} parser;

/* Records the first error with its position; always returns 0. */
__attribute__((format(printf, 2, 3))) static int fail(parser *P, const char *fmt, ...)
{
    if (P->err && P->err[0] == '\0') {
        int k = snprintf(P->err, P->errlen, "line %d, column %ld: ", P->line,
                         (long)(P->p - P->line_start) + 1);
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < P->errlen)
            vsnprintf(P->err + k, P->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static void skip_ws(parser *P)
{
    while (P->p < P->end) {
        char c = *P->p;
        if (c == '\n') {
            P->line++;
            P->line_start = P->p + 1;
        } else if (c != ' ' && c != '\t' && c != '\r')
            return;
        P->p++;
    }
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned cp, min;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xE0) == 0xC0) len = 2, cp = s[0] & 0x1F, min = 0x80;
    else if ((s[0] & 0xF0) == 0xE0) len = 3, cp = s[0] & 0x0F, min = 0x800;
    else if ((s[0] & 0xF8) == 0xF0) len = 4, cp = s[0] & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* A string token at P->p (which is '"'): decoded into a new buffer. */
static int parse_string(parser *P, char **out, size_t *outlen)
{
    const char *s = ++P->p;                /* after the opening quote */
    size_t raw = 0;                        /* bytes up to the closing quote */
    while (s + raw < P->end && s[raw] != '"')
        raw += (s[raw] == '\\' && s + raw + 1 < P->end) ? 2 : 1;
    if (s + raw >= P->end)
        return fail(P, "unterminated string");
    char *o = malloc(raw + 1), *q = o;     /* decoding never lengthens */
    if (!o)
        return fail(P, "out of memory");
    while (P->p < s + raw) {
        unsigned char c = (unsigned char)*P->p;
        if (c < 0x20) {
            free(o);
            return fail(P, "control character 0x%02x in a string (escape it)", c);
        }
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)P->p, (size_t)(s + raw - P->p));
            if (!n) {
                free(o);
                return fail(P, "invalid UTF-8 in a string");
            }
            memcpy(q, P->p, n);
            q += n, P->p += n;
            continue;
        }
        if (c != '\\') {
            *q++ = (char)c, P->p++;
            continue;
        }
        char e = P->p[1];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *hit = strchr(from, e);
        if (e && hit) {
            *q++ = to[hit - from], P->p += 2;
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || s + raw - P->p < 6 || !hex4(P->p + 2, &cp)) {
            free(o);
            return fail(P, "invalid escape in a string");
        }
        P->p += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            free(o);
            return fail(P, "lone low surrogate \\u%04X", cp);
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {     /* needs \uDC00-\uDFFF next */
            if (s + raw - P->p < 6 || P->p[0] != '\\' || P->p[1] != 'u' ||
                !hex4(P->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                free(o);
                return fail(P, "high surrogate \\u%04X without its low half", cp);
            }
            P->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        q += put_utf8(q, cp);
    }
    P->p++;                                /* the closing quote */
    *q = '\0';
    *out = o;
    *outlen = (size_t)(q - o);
    return 1;
}

static int parse_number(parser *P, double *out)
{
    const char *s = P->p, *e = s;
    if (e < P->end && *e == '-') e++;
    if (e < P->end && *e == '0') e++;
    else if (e < P->end && *e >= '1' && *e <= '9')
        while (e < P->end && *e >= '0' && *e <= '9') e++;
    else
        return fail(P, "invalid number");
    if (e < P->end && *e == '.') {
        if (++e >= P->end || *e < '0' || *e > '9') return fail(P, "invalid number: digits must follow '.'");
        while (e < P->end && *e >= '0' && *e <= '9') e++;
    }
    if (e < P->end && (*e == 'e' || *e == 'E')) {
        e++;
        if (e < P->end && (*e == '+' || *e == '-')) e++;
        if (e >= P->end || *e < '0' || *e > '9') return fail(P, "invalid number: digits must follow the exponent");
        while (e < P->end && *e >= '0' && *e <= '9') e++;
    }
    if (e < P->end && ((*e >= '0' && *e <= '9') || *e == '.'))
        return fail(P, "invalid number (leading zero?)");
    char buf[512];
    if ((size_t)(e - s) >= sizeof buf)
        return fail(P, "number longer than %zu characters", sizeof buf - 1);
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = '\0';
    errno = 0;
    *out = strtod(buf, NULL);
    if (errno == ERANGE && isinf(*out))
        return fail(P, "number %s does not fit in a double", buf);
    P->p = e;
    return 1;
}

static int parse_value(parser *P, json_value *v);

/* Frees what a value owns (not the value itself). */
static void free_inside(json_value *v)
{
    size_t k;
    switch (v->type) {
    case JSON_STRING:
        free(v->u.string.s);
        break;
    case JSON_ARRAY:
        for (k = 0; k < v->u.array.n; k++)
            free_inside(&v->u.array.items[k]);
        free(v->u.array.items);
        break;
    case JSON_OBJECT:
        for (k = 0; k < v->u.object.n; k++) {
            free(v->u.object.keys[k]);
            free_inside(&v->u.object.values[k]);
        }
        free(v->u.object.keys);
        free(v->u.object.values);
        break;
    default:
        break;
    }
}

/* Grows *items (of *cap elements of size sz) to hold n + 1. */
static int grow(void **items, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return 1;
    size_t c = *cap ? 2 * *cap : 8;
    if (c > SIZE_MAX / sz)
        return 0;
    void *p = realloc(*items, c * sz);
    if (!p)
        return 0;
    *items = p;
    *cap = c;
    return 1;
}

static int parse_array(parser *P, json_value *v)
{
    size_t cap = 0;
    v->type = JSON_ARRAY;
    P->p++;
    skip_ws(P);
    if (P->p < P->end && *P->p == ']') {
        P->p++;
        return 1;
    }
    for (;;) {
        if (!grow((void **)&v->u.array.items, &cap, v->u.array.n, sizeof(json_value)))
            return fail(P, "out of memory");
        /* counted before it is parsed, so that a failure frees its parts */
        json_value *item = &v->u.array.items[v->u.array.n++];
        if (!parse_value(P, item))
            return 0;
        skip_ws(P);
        if (P->p < P->end && *P->p == ',') {
            P->p++;
            continue;
        }
        if (P->p < P->end && *P->p == ']') {
            P->p++;
            return 1;
        }
        return fail(P, "expected ',' or ']' in an array");
    }
}

static int parse_object(parser *P, json_value *v)
{
    size_t kcap = 0, vcap = 0;
    v->type = JSON_OBJECT;
    P->p++;
    skip_ws(P);
    if (P->p < P->end && *P->p == '}') {
        P->p++;
        return 1;
    }
    for (;;) {
        size_t n = v->u.object.n;
        if (n == JSON_MAX_MEMBERS)
            return fail(P, "object with more than %d members", JSON_MAX_MEMBERS);
        if (!grow((void **)&v->u.object.keys, &kcap, n, sizeof(char *)) ||
            !grow((void **)&v->u.object.values, &vcap, n, sizeof(json_value)))
            return fail(P, "out of memory");
        skip_ws(P);
        if (P->p >= P->end || *P->p != '"')
            return fail(P, "expected a string key in an object");
        char *key;
        size_t klen;
        if (!parse_string(P, &key, &klen))
            return 0;
        if (strlen(key) != klen) {
            free(key);
            return fail(P, "key with an escaped NUL character");
        }
        for (size_t k = 0; k < n; k++)
            if (strcmp(v->u.object.keys[k], key) == 0) {
                fail(P, "duplicate key \"%.64s\"", key);
                free(key);
                return 0;
            }
        skip_ws(P);
        if (P->p >= P->end || *P->p != ':') {
            free(key);
            return fail(P, "expected ':' after a key");
        }
        P->p++;
        v->u.object.keys[n] = key;          /* owned by v from here on */
        json_value *val = &v->u.object.values[n];
        memset(val, 0, sizeof *val);
        v->u.object.n++;
        if (!parse_value(P, val))
            return 0;
        skip_ws(P);
        if (P->p < P->end && *P->p == ',') {
            P->p++;
            continue;
        }
        if (P->p < P->end && *P->p == '}') {
            P->p++;
            return 1;
        }
        return fail(P, "expected ',' or '}' in an object");
    }
}

static int literal(parser *P, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0)
        return 0;
    P->p += n;
    return 1;
}

/* Parses one value into *v. On failure *v holds only what it owns (freed
 * by the caller's free_inside), so nothing leaks. */
static int parse_value(parser *P, json_value *v)
{
    memset(v, 0, sizeof *v);
    skip_ws(P);
    v->line = P->line;
    if (P->p >= P->end)
        return fail(P, "unexpected end of input");
    if (P->depth >= JSON_MAX_DEPTH)
        return fail(P, "nesting deeper than %d", JSON_MAX_DEPTH);
    int ok;
    char c = *P->p;
    P->depth++;
    if (c == '{')
        ok = parse_object(P, v);
    else if (c == '[')
        ok = parse_array(P, v);
    else if (c == '"') {
        v->type = JSON_STRING;
        ok = parse_string(P, &v->u.string.s, &v->u.string.len);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        v->type = JSON_NUMBER;
        ok = parse_number(P, &v->u.number);
    } else if (literal(P, "true")) {
        v->type = JSON_BOOL;
        v->u.boolean = ok = 1;
    } else if (literal(P, "false")) {
        v->type = JSON_BOOL;
        ok = 1;
    } else if (literal(P, "null")) {
        v->type = JSON_NULL;
        ok = 1;
    } else if (c >= 0x20 && c < 0x7f)
        ok = fail(P, "unexpected character '%c'", c);
    else
        ok = fail(P, "unexpected byte 0x%02x", (unsigned char)c);
    P->depth--;
    return ok;
}

json_value *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0)
        err = dummy, errlen = sizeof dummy;
    err[0] = '\0';
    json_value *root = text ? malloc(sizeof *root) : NULL;
    if (!root) {
        snprintf(err, errlen, text ? "out of memory" : "no text");
        return NULL;
    }
    parser P = {text, text + len, text, 1, 0, err, errlen};
    int ok = parse_value(&P, root);
    if (ok) {
        skip_ws(&P);
        if (P.p != P.end)
            ok = fail(&P, "text after the JSON value");
    }
    if (!ok) {
        free_inside(root);
        free(root);
        return NULL;
    }
    return root;
}

json_value *json_parse_file(const char *path, char *err, size_t errlen)
{
    enum { MAX_BYTES = 64 << 20 };
    char dummy[1];
    if (!err || errlen == 0)
        err = dummy, errlen = sizeof dummy;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || n > MAX_BYTES)
            break;
        char *b = realloc(buf, cap *= 2);
        if (!b)
            free(buf);
        buf = b;
    }
    int read_error = ferror(f);
    fclose(f);
    if (!buf || read_error || n > MAX_BYTES) {
        snprintf(err, errlen, "%s: %s", path, !buf ? "out of memory"
                 : read_error ? "read error" : "larger than 64 MiB");
        free(buf);
        return NULL;
    }
    char msg[256];
    json_value *v = json_parse(buf, n, msg, sizeof msg);
    free(buf);
    if (!v)
        snprintf(err, errlen, "%s: %s", path, msg);
    return v;
}

void json_free(json_value *v)
{
    if (v) {
        free_inside(v);
        free(v);
    }
}

const json_value *json_get(const json_value *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    for (size_t k = 0; k < obj->u.object.n; k++)
        if (strcmp(obj->u.object.keys[k], key) == 0)
            return &obj->u.object.values[k];
    return NULL;
}

const char *json_type_name(json_type t)
{
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < 6 ? names[t] : "unknown";
}
