/* Optional C fast path for asterisk_ami.protocol (the hiredis of this library).
 *
 * parse_simple(text, keys, follows) does in C exactly what the pure-Python fast path in
 * AmiProtocol._parse_region does: split a decoded region on "\r\n\r\n", and turn every piece whose
 * lines are all "Name: value" with a cached Name (keys[name] -> frame key) into a frame dict, a
 * repeated key collecting its values in a list. Any other piece (a raw line, an unknown name, a
 * "Response: Follows" body, an empty piece) is handed back as its str for the Python parser, so
 * every rule still lives in one place: protocol.py. Returns (items, slow_count), or None when the
 * Python parser must take the whole text: not one byte per character, or a bare LF somewhere.
 *
 * Header names repeat endlessly in AMI traffic, so names that `keys` knows are also kept here, by
 * their bytes: a known name then costs no str object and no dict lookup. The name -> key mapping is
 * a pure function (protocol.normalize_key), so one table serves every connection. The values of a
 * few headers with a handful of values each (Event, Privilege, ChannelState, ...) are kept the same
 * way: one shared str per value, its hash computed once, so dispatch by event name and the live
 * model's checks cost no allocation and no hashing. Frames are equal either way. The tables are only
 * read and written between Python API calls, while the GIL is held.
 *
 * tests/test_speedups.py checks it against the Python parser, on the protocol tests' inputs and on
 * random ones. After editing this file, rebuild: .venv/bin/pip install -e . (./scripts/test does).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_NAME 48           /* longer names are looked up in `keys` every time */
#define TABLE_SIZE 1024       /* power of two; filled to 3/4 at most */
#define MAX_FAST_LINES 128    /* AST_MAX_MANHEADERS: longer pieces go to the Python parser */

typedef struct {
    PyObject *key; /* strong reference, never released: the table lives as long as the process */
    Py_ssize_t len;
    int shared;    /* a name table entry whose values are kept in `values` */
    char name[MAX_NAME];
} Entry;

typedef struct {
    Entry *slots;
    Py_ssize_t used;
} Table;

static Entry name_slots[TABLE_SIZE];
static Entry value_slots[TABLE_SIZE];
static Table names = {name_slots, 0};
static Table values = {value_slots, 0};

/* the frame keys whose values are few and repeat on every frame */
static const char *const SHARED_VALUES[] = {
    "event", "privilege", "response", "eventlist", "channelstate", "channelstatedesc", "language", NULL,
};

static size_t
name_hash(const char *s, Py_ssize_t n)
{
    size_t h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The entry for s[0:n] (borrowed), or NULL. */
static Entry *
table_get(Table *t, const char *s, Py_ssize_t n, size_t h)
{
    if (n > MAX_NAME)
        return NULL;
    for (size_t i = h & (TABLE_SIZE - 1);; i = (i + 1) & (TABLE_SIZE - 1)) {
        Entry *e = &t->slots[i];
        if (e->key == NULL)
            return NULL;
        if (e->len == n && memcmp(e->name, s, (size_t)n) == 0)
            return e;
    }
}

/* Keep obj for s[0:n]; returns the entry the table holds for it (borrowed), or NULL when it keeps
   none (too long, table full). */
static Entry *
table_put(Table *t, const char *s, Py_ssize_t n, size_t h, PyObject *obj)
{
    if (n > MAX_NAME || t->used >= TABLE_SIZE / 4 * 3)
        return NULL;
    for (size_t i = h & (TABLE_SIZE - 1);; i = (i + 1) & (TABLE_SIZE - 1)) {
        Entry *e = &t->slots[i];
        if (e->key == NULL) {
            memcpy(e->name, s, (size_t)n);
            e->len = n;
            e->shared = 0;
            Py_INCREF(obj);
            e->key = obj;
            t->used++;
            return e;
        }
        if (e->len == n && memcmp(e->name, s, (size_t)n) == 0)
            return e;
    }
}

static int
is_shared(PyObject *key)
{
    for (const char *const *k = SHARED_VALUES; *k != NULL; k++)
        if (PyUnicode_CompareWithASCIIString(key, *k) == 0)
            return 1;
    return 0;
}

/* The value s[0:n] of a line: the shared str when its key's values are shared (new reference). */
static PyObject *
line_value(PyObject *text, const char *s, Py_ssize_t start, Py_ssize_t end, int shared)
{
    if (!shared || end - start > MAX_NAME)
        return PyUnicode_Substring(text, start, end);
    const char *v = s + start;
    size_t h = name_hash(v, end - start);
    Entry *e = table_get(&values, v, end - start, h);
    if (e != NULL) {
        Py_INCREF(e->key);
        return e->key;
    }
    PyObject *value = PyUnicode_Substring(text, start, end);
    if (value == NULL)
        return NULL;
    if (PyObject_Hash(value) == -1) {
        Py_DECREF(value);
        return NULL;
    }
    table_put(&values, v, end - start, h, value); /* a full table keeps none: the value is just not shared */
    return value;
}

static const char *
find2(const char *s, const char *end, char a, char b)
{
    /* first "ab" in [s, end), or NULL */
    while (s < end) {
        const char *p = memchr(s, a, (size_t)(end - s));
        if (p == NULL || p + 1 >= end)
            return NULL;
        if (p[1] == b)
            return p;
        s = p + 1;
    }
    return NULL;
}

static const char *
find_term(const char *s, const char *end)
{
    /* first "\r\n\r\n" in [s, end), or NULL */
    while (s < end) {
        const char *p = memchr(s, '\r', (size_t)(end - s));
        if (p == NULL || end - p < 4)
            return NULL;
        if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n')
            return p;
        s = p + 1;
    }
    return NULL;
}

static int
has_bare_lf(const char *s, const char *end)
{
    for (const char *p = s; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        if (p == s || p[-1] != '\r')
            return 1;
    return 0;
}

typedef struct {
    Py_ssize_t colon, end; /* offsets of ": " and of the line end */
    PyObject *key;         /* borrowed from the table, which never lets go */
    int shared;            /* its values are shared (SHARED_VALUES) */
} Line;

enum { FAST, SLOW, BARE_LF, ERROR };

/* A piece the Python parser takes: SLOW, unless a bare LF in the rest of it (from p; the lines before p
   were checked) means the Python parser must take the whole text. */
static int
hand_back(const char *p, const char *stop)
{
    return has_bare_lf(p, stop) ? BARE_LF : SLOW;
}

/* Check the lines of s[start:end]: FAST (lines[] and *count filled), SLOW, BARE_LF or ERROR. */
static int
scan_piece(PyObject *text, const char *s, Py_ssize_t start, Py_ssize_t end, PyObject *keys,
           const char *follows, Py_ssize_t follows_len, Line *lines, Py_ssize_t *count)
{
    const char *p = s + start, *stop = s + end;
    Py_ssize_t n = 0;
    /* the Python parser strips CR/LF at the start of a piece (blank lines between frames) before it
       reads the first name: leave such pieces to it, or "\rEvent" would be a name here and not there */
    if (p < stop && (*p == '\r' || *p == '\n'))
        return hand_back(p, stop);
    for (;;) {
        const char *q = find2(p, stop, '\r', '\n');
        const char *line_end = q ? q : stop;
        if (memchr(p, '\n', (size_t)(line_end - p)) != NULL)
            return BARE_LF;
        if (n == 0 && line_end - p == follows_len && memcmp(p, follows, (size_t)follows_len) == 0)
            return hand_back(p, stop);
        const char *c = find2(p, line_end, ':', ' ');
        if (c == NULL || n == MAX_FAST_LINES)
            return hand_back(p, stop);
        size_t h = name_hash(p, c - p);
        Entry *e = table_get(&names, p, c - p, h);
        if (e == NULL) {
            PyObject *name = PyUnicode_Substring(text, p - s, c - s);
            if (name == NULL)
                return ERROR;
            PyObject *key = PyDict_GetItemWithError(keys, name); /* borrowed */
            Py_DECREF(name);
            if (key == NULL)
                return PyErr_Occurred() ? ERROR : hand_back(p, stop);
            if (!PyUnicode_CheckExact(key)) {
                PyErr_SetString(PyExc_TypeError, "keys must map str to str");
                return ERROR;
            }
            e = table_put(&names, p, c - p, h, key);
            if (e == NULL) /* too long, or the table is full: the Python parser gives the same frame */
                return hand_back(p, stop);
            e->shared = is_shared(e->key);
        }
        lines[n].colon = c - s;
        lines[n].end = line_end - s;
        lines[n].key = e->key;
        lines[n].shared = e->shared;
        n++;
        if (q == NULL)
            break;
        p = q + 2;
    }
    *count = n;
    return FAST;
}

static PyObject *
build_frame(PyObject *text, const Line *lines, Py_ssize_t count)
{
#if PY_VERSION_HEX < 0x030D0000
    PyObject *frame = _PyDict_NewPresized(count);
#else
    PyObject *frame = PyDict_New();
#endif
    if (frame == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = lines[i].key;
        PyObject *value = line_value(text, (const char *)PyUnicode_1BYTE_DATA(text), lines[i].colon + 2,
                                     lines[i].end, lines[i].shared);
        if (value == NULL)
            goto error;
        PyObject *old = PyDict_GetItemWithError(frame, key); /* borrowed */
        int rc;
        if (old == NULL) {
            rc = PyErr_Occurred() ? -1 : PyDict_SetItem(frame, key, value);
        } else if (PyList_CheckExact(old)) {
            rc = PyList_Append(old, value);
        } else {
            PyObject *both = PyList_New(2);
            if (both == NULL) {
                rc = -1;
            } else {
                Py_INCREF(old);
                Py_INCREF(value);
                PyList_SET_ITEM(both, 0, old);
                PyList_SET_ITEM(both, 1, value);
                rc = PyDict_SetItem(frame, key, both);
                Py_DECREF(both);
            }
        }
        Py_DECREF(value);
        if (rc < 0)
            goto error;
    }
    return frame;
error:
    Py_DECREF(frame);
    return NULL;
}

static PyObject *
parse_simple(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "parse_simple(text, keys, follows) takes 3 arguments");
        return NULL;
    }
    PyObject *text = args[0], *keys = args[1], *follows = args[2];
    if (!PyUnicode_CheckExact(text) || !PyDict_CheckExact(keys) || !PyUnicode_CheckExact(follows)) {
        PyErr_SetString(PyExc_TypeError, "parse_simple(text: str, keys: dict, follows: str)");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0 || PyUnicode_READY(follows) < 0)
        return NULL;
#endif
    if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND || PyUnicode_KIND(follows) != PyUnicode_1BYTE_KIND)
        Py_RETURN_NONE;
    const char *s = (const char *)PyUnicode_1BYTE_DATA(text);
    const char *text_end = s + PyUnicode_GET_LENGTH(text);
    const char *f = (const char *)PyUnicode_1BYTE_DATA(follows);
    Py_ssize_t f_len = PyUnicode_GET_LENGTH(follows);

    Line lines[MAX_FAST_LINES];
    PyObject *items = PyList_New(0);
    if (items == NULL)
        return NULL;
    int slow = 0;
    const char *p = s;
    for (;;) {
        const char *t = find_term(p, text_end);
        const char *end = t ? t : text_end;
        Py_ssize_t count = 0;
        PyObject *item;
        switch (scan_piece(text, s, p - s, end - s, keys, f, f_len, lines, &count)) {
        case FAST:
            item = build_frame(text, lines, count);
            break;
        case SLOW:
            slow++;
            item = PyUnicode_Substring(text, p - s, end - s);
            break;
        case BARE_LF:
            Py_DECREF(items);
            Py_RETURN_NONE;
        default:
            item = NULL;
        }
        if (item == NULL || PyList_Append(items, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(items);
            return NULL;
        }
        Py_DECREF(item);
        if (t == NULL)
            break;
        p = t + 4;
    }
    return Py_BuildValue("(Ni)", items, slow);
}

static PyMethodDef methods[] = {
    {"parse_simple", (PyCFunction)(void (*)(void))parse_simple, METH_FASTCALL,
     "parse_simple(text, keys, follows) -> (frame dicts and slow-path strs, slow count) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "C fast path for asterisk_ami.protocol", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
