defmodule Aion.Error do
  @moduledoc """
  The error Aion returns as `{:error, %Aion.Error{}}` (or raises).

  Fields:

    * `:reason` - a stable atom naming the kind of error (match on this), such as
      `:invalid_option`, `:unknown_workflow`, `:unserializable`, `:already_started`,
      `:not_found`, `:timeout`, `:nondeterminism`, `:store_open_failed`,
      `:store_in_use`, `:workflow_raised`, `:activity_raised`, `:activity_exited`,
      `:activity_timeout`, `:not_running`.
    * `:message` - a sentence for humans.
    * `:code` - a stable code for errors with a catalogue entry
      (`"AION-ND001"`, ...; see `docs/errors/`), else `nil`.
    * `:details` - a map with more context, or `nil`.
  """

  defexception [:reason, :message, :code, :details]

  @type t :: %__MODULE__{reason: atom(), message: String.t(), code: String.t() | nil, details: map() | nil}

  @doc false
  def new(reason, message, fields \\ []) do
    struct!(__MODULE__, [reason: reason, message: message] ++ fields)
  end

  @doc false
  # Errors as the NIF returns them: {reason, message, code}.
  def from_native({reason, message, code}) when is_atom(reason) do
    %__MODULE__{reason: reason, message: message, code: code}
  end

  @doc false
  def from_crash(reason, kind, value, stacktrace) do
    new(reason, Exception.format_banner(kind, value, stacktrace),
      details: %{
        kind: kind,
        exception: if(kind == :error and is_exception(value), do: value.__struct__),
        stacktrace: Exception.format_stacktrace(stacktrace)
      }
    )
  end
end
