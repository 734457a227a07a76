defmodule Aion.Error do
  @moduledoc """
  The error Aion returns as `{:error, %Aion.Error{}}` (or raises).

  Fields:

    * `:reason` - a stable atom naming the kind of error (match on this); see
      `t:reason/0`.
    * `:message` - a sentence for humans.
    * `:code` - a stable code for errors with a catalogue entry
      (`"AION-ND001"`, ...; see `docs/errors/`), else `nil`.
    * `:details` - a map with more context, or `nil`.
  """

  defexception [:reason, :message, :code, :details]

  @typedoc """
  Every reason Aion produces:

    * bad input: `:invalid_option`, `:invalid_workflow_id`, `:unknown_workflow`,
      `:unserializable`, `:invalid_query_name`, `:invalid_search_attribute` (a
      value that is not a string, integer, float, boolean or DateTime, or of
      another kind than its name already has in the store), `:invalid_filter`
      (`Aion.list/3`, `Aion.count/2`);
    * workflows: `:already_started`, `:not_found`, `:not_running` (also: no such
      instance, or it stopped), `:timeout` (a wait ran out), `:nondeterminism`,
      `:reset_refused` (`Aion.reset/3` of a run that completed, continued as
      new, or runs without `terminate_running: true`);
    * queries (`Aion.query/5`): `:unknown_query` (no handler by that name;
      `details.known` lists the registered ones), `:query_failed` (the
      handler raised, exited, threw or tried to issue a command), `:read_only`
      (a run loaded to answer a query was asked to record or wait: a bug in
      Aion if you ever see it);
    * updates (`Aion.update/5`): `:update_failed` (the workflow's handler
      raised);
    * how a run or activity failed: `:workflow_raised`, `:workflow_failed`,
      `:activity_raised`, `:activity_exited`, `:activity_timeout`, `:cancelled`;
      a run that ended otherwise: `:terminated` (`details.reason` holds the
      reason given to `Aion.terminate/3`), `:timed_out`, `:continued_as_new`;
    * the store and engine: `:store_open_failed`, `:store_in_use`,
      `:store_corrupt`, `:store_schema_too_new`, `:store_error` (transient:
      retry), `:sequence_conflict`, `:closed`, `:engine_timeout`, `:superseded`,
      `:invalid_command`, `:panic` (a bug in Aion: please report it),
      `:invalid_fault` (the `AION_FAULT` environment variable, for crash
      tests only, names no fault point: no instance starts until it is fixed
      or unset).
  """
  @type reason ::
          :invalid_option
          | :invalid_workflow_id
          | :unknown_workflow
          | :unserializable
          | :invalid_query_name
          | :invalid_search_attribute
          | :invalid_filter
          | :already_started
          | :not_found
          | :not_running
          | :timeout
          | :nondeterminism
          | :reset_refused
          | :unknown_query
          | :query_failed
          | :read_only
          | :update_failed
          | :workflow_raised
          | :workflow_failed
          | :activity_raised
          | :activity_exited
          | :activity_timeout
          | :cancelled
          | :terminated
          | :timed_out
          | :continued_as_new
          | :store_open_failed
          | :store_in_use
          | :store_corrupt
          | :store_schema_too_new
          | :store_error
          | :sequence_conflict
          | :closed
          | :engine_timeout
          | :superseded
          | :invalid_command
          | :panic
          | :invalid_fault

  @type t :: %__MODULE__{reason: reason(), message: String.t(), code: String.t() | nil, details: map() | nil}

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
