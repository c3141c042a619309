import enum
class DecodeError(enum.StrEnum):
    EMPTY = "EMPTY"
    TOO_LARGE = "TOO_LARGE"
    NOT_UTF8 = "NOT_UTF8"
    NOT_JSON = "NOT_JSON"
    NOT_OBJECT = "NOT_OBJECT"
    TRUNCATED = "TRUNCATED"
    BAD_ARROW = "BAD_ARROW"
