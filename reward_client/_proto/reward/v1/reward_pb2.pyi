from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreItem(_message.Message):
    __slots__ = ("id", "answer_type", "response", "answer", "problem_type", "prompt_type", "choices", "options")
    ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    answer_type: str
    response: str
    answer: _struct_pb2.Value
    problem_type: str
    prompt_type: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    options: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., answer_type: _Optional[str] = ..., response: _Optional[str] = ..., answer: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., problem_type: _Optional[str] = ..., prompt_type: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoreItem]
    def __init__(self, items: _Optional[_Iterable[_Union[ScoreItem, _Mapping]]] = ...) -> None: ...

class ScoreResult(_message.Message):
    __slots__ = ("id", "index", "reward", "acc_reward", "format_reward", "components", "extracted", "status", "error", "cached")
    class ComponentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    ACC_REWARD_FIELD_NUMBER: _ClassVar[int]
    FORMAT_REWARD_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    EXTRACTED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    id: str
    index: int
    reward: float
    acc_reward: float
    format_reward: float
    components: _containers.ScalarMap[str, float]
    extracted: str
    status: str
    error: str
    cached: bool
    def __init__(self, id: _Optional[str] = ..., index: _Optional[int] = ..., reward: _Optional[float] = ..., acc_reward: _Optional[float] = ..., format_reward: _Optional[float] = ..., components: _Optional[_Mapping[str, float]] = ..., extracted: _Optional[str] = ..., status: _Optional[str] = ..., error: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ScoreResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ScoreResult, _Mapping]]] = ...) -> None: ...

class ListAnswerTypesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAnswerTypesResponse(_message.Message):
    __slots__ = ("answer_types",)
    ANSWER_TYPES_FIELD_NUMBER: _ClassVar[int]
    answer_types: _containers.RepeatedCompositeFieldContainer[AnswerType]
    def __init__(self, answer_types: _Optional[_Iterable[_Union[AnswerType, _Mapping]]] = ...) -> None: ...

class AnswerType(_message.Message):
    __slots__ = ("name", "description", "expects", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AnswerTypeOption
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AnswerTypeOption, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    expects: str
    options: _containers.MessageMap[str, AnswerTypeOption]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., expects: _Optional[str] = ..., options: _Optional[_Mapping[str, AnswerTypeOption]] = ...) -> None: ...

class AnswerTypeOption(_message.Message):
    __slots__ = ("default", "type", "help")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    default: _struct_pb2.Value
    type: str
    help: str
    def __init__(self, default: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., type: _Optional[str] = ..., help: _Optional[str] = ...) -> None: ...
