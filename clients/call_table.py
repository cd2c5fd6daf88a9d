"""The one table of calls that `Client` and `AsyncClient` are built from.

Every RPC of every service of the contracts is here under its snake_case name (tests/clients/
test_client_surface.py fails when one is missing): `unary` sends a request as it is and answers
the response, `paged` answers the items of every page of a List call; the others are written
in the domain modules (registry_calls, dsn_calls...) with arguments in the field's own words.
A few calls more than one RPC (sign_in, wait_bulk_operation, check_health) sit beside them.
"""

from __future__ import annotations

from interops.habilitation.v1 import account_pb2 as account
from interops.habilitation.v1 import habilitation_pb2 as habilitation
from interops.nomenclature.v1 import nomenclature_pb2 as nomenclature
from interops.notify.v1 import notify_pb2 as notify
from interops.relations.v1 import relations_pb2 as relations
from interops.token.v1 import token_service_pb2 as token

from clients import (
    dsn_calls,
    habilitation_calls,
    mandate_calls,
    node_calls,
    notify_calls,
    registry_calls,
    token_calls,
    trace_calls,
)
from clients.calls import Call, ItemsCall, paged, unary


class CallTable:
    """Every call of the clients; each is a method of `Client` and, awaited, of `AsyncClient`."""

    # -- the node ------------------------------------------------------------------------------
    check_health = Call(node_calls.check_health)
    list_audit_records = ItemsCall(node_calls.list_audit_records)
    list_records = list_audit_records
    # -- interops.trace.v1.TraceService: one exchange's spans, the traces of a deposit... ----
    get_trace = Call(trace_calls.get_trace)
    search_traces = Call(trace_calls.search_traces)

    # -- interops.registry.v1.RegistryService, interops.operation.v1.OperationService --------
    get_company = Call(registry_calls.get_company)
    get_establishment = Call(registry_calls.get_establishment)
    batch_get_establishments = Call(registry_calls.batch_get_establishments)
    list_establishments = ItemsCall(registry_calls.list_establishments)
    search_companies = ItemsCall(registry_calls.search_companies)
    validate_siret = Call(registry_calls.validate_siret)
    import_stock = Call(registry_calls.import_stock)
    watch_changes = ItemsCall(registry_calls.watch_changes)
    get_operation = Call(registry_calls.get_operation)
    watch_operation = ItemsCall(registry_calls.watch_operation)

    # -- interops.token.v1.TokenService -------------------------------------------------------
    issue_token = unary(token.IssueTokenRequest, token.IssueTokenResponse)
    sign_in = Call(token_calls.sign_in)
    issue_organism_token = Call(token_calls.issue_organism_token)
    delegate_token = Call(token_calls.delegate_token)
    verify_token = Call(token_calls.verify_token)
    revoke_token = Call(token_calls.revoke_token)
    get_directory = Call(token_calls.get_directory)
    get_revocations = Call(token_calls.get_revocations)

    # -- interops.dsn.v1.DepositService, DeliveryService ------------------------------------
    submit_deposit = Call(dsn_calls.submit_deposit)
    get_deposit = Call(dsn_calls.get_deposit)
    list_deposits = ItemsCall(dsn_calls.list_deposits)
    watch_deposit = ItemsCall(dsn_calls.watch_deposit)
    list_returns = ItemsCall(dsn_calls.list_returns)
    watch_returns = ItemsCall(dsn_calls.watch_returns)
    fetch_deliveries = Call(dsn_calls.fetch_deliveries)
    fetch_shares = Call(dsn_calls.fetch_shares)
    stream_deliveries = ItemsCall(dsn_calls.stream_deliveries)
    download_delivery = Call(dsn_calls.download_delivery)
    download_share = Call(dsn_calls.download_share)
    acknowledge_delivery = Call(dsn_calls.acknowledge_delivery)
    acknowledge_deliveries = Call(dsn_calls.acknowledge_deliveries)
    post_return = Call(dsn_calls.post_return)

    # -- interops.habilitation.v1.HabilitationService ---------------------------------------
    register_company = unary(
        habilitation.RegisterCompanyRequest, habilitation.RegisterCompanyResponse
    )
    apply_as_administrator = unary(
        habilitation.ApplyAsAdministratorRequest, habilitation.ApplyAsAdministratorResponse
    )
    activate_administrator = unary(
        habilitation.ActivateAdministratorRequest, habilitation.ActivateAdministratorResponse
    )
    confirm_email = unary(habilitation.ConfirmEmailRequest, habilitation.ConfirmEmailResponse)
    validate_candidate = unary(
        habilitation.ValidateCandidateRequest, habilitation.ValidateCandidateResponse
    )
    create_declarant = unary(
        habilitation.CreateDeclarantRequest, habilitation.CreateDeclarantResponse
    )
    strike_off = unary(habilitation.StrikeOffRequest, habilitation.StrikeOffResponse)
    list_accounts = ItemsCall(habilitation_calls.list_accounts)
    create_portfolio = unary(
        habilitation.CreatePortfolioRequest, habilitation.CreatePortfolioResponse
    )
    update_portfolio = unary(
        habilitation.UpdatePortfolioRequest, habilitation.UpdatePortfolioResponse
    )
    list_portfolios = paged(habilitation.ListPortfoliosRequest, habilitation.Portfolio)
    grant_habilitation = unary(
        habilitation.GrantHabilitationRequest, habilitation.GrantHabilitationResponse
    )
    revoke_habilitation = unary(
        habilitation.RevokeHabilitationRequest, habilitation.RevokeHabilitationResponse
    )
    list_habilitations = ItemsCall(habilitation_calls.list_habilitations)
    list_admin_acts = ItemsCall(habilitation_calls.list_admin_acts)
    import_habilitations = Call(habilitation_calls.import_habilitations)
    get_bulk_operation = unary(
        habilitation.GetBulkOperationRequest, habilitation.GetBulkOperationResponse
    )
    wait_bulk_operation = Call(habilitation_calls.wait_bulk_operation)
    export_habilitations = Call(habilitation_calls.export_habilitations)
    grant_firm_mandate = unary(
        habilitation.GrantFirmMandateRequest, habilitation.GrantFirmMandateResponse
    )
    end_firm_mandate = unary(
        habilitation.EndFirmMandateRequest, habilitation.EndFirmMandateResponse
    )
    list_firm_mandates = unary(
        habilitation.ListFirmMandatesRequest, habilitation.ListFirmMandatesResponse
    )
    check_access = unary(habilitation.CheckAccessRequest, habilitation.CheckAccessResponse)

    # -- interops.habilitation.v1.AccountService (lost passwords) ----------------------------
    set_secret_question = unary(account.SetSecretQuestionRequest, account.SetSecretQuestionResponse)
    get_secret_question = unary(account.GetSecretQuestionRequest, account.GetSecretQuestionResponse)
    answer_secret_question = unary(
        account.AnswerSecretQuestionRequest, account.AnswerSecretQuestionResponse
    )
    request_password_reset = unary(
        account.RequestPasswordResetRequest, account.RequestPasswordResetResponse
    )
    reset_password = unary(account.ResetPasswordRequest, account.ResetPasswordResponse)
    issue_reset_code = unary(account.IssueResetCodeRequest, account.IssueResetCodeResponse)
    support_password_reset = unary(
        account.SupportPasswordResetRequest, account.SupportPasswordResetResponse
    )
    unlock_account = unary(account.UnlockAccountRequest, account.UnlockAccountResponse)

    # -- interops.mandate.v1.MandateService -------------------------------------------------
    create_mandate = Call(mandate_calls.create_mandate)
    acknowledge_mandate = Call(mandate_calls.acknowledge_mandate)
    revoke_mandate = Call(mandate_calls.revoke_mandate)
    use_mandate = Call(mandate_calls.use_mandate)
    get_mandate = Call(mandate_calls.get_mandate)
    search_mandates = ItemsCall(mandate_calls.search_mandates)
    print_mandate = Call(mandate_calls.print_mandate)
    get_creditor_mandate = Call(mandate_calls.get_creditor_mandate)
    search_creditor_mandates = ItemsCall(mandate_calls.search_creditor_mandates)
    extract_mandates = Call(mandate_calls.extract_mandates)
    get_extraction = Call(mandate_calls.get_extraction)
    wait_extraction = Call(mandate_calls.wait_extraction)
    download_extraction = ItemsCall(mandate_calls.download_extraction)

    # -- interops.nomenclature.v1.NomenclatureService ---------------------------------------
    publish_version = unary(nomenclature.PublishVersionRequest, nomenclature.PublishVersionResponse)
    get_table = unary(nomenclature.GetTableRequest, nomenclature.GetTableResponse)
    diff = unary(nomenclature.DiffRequest, nomenclature.DiffResponse)

    # -- interops.notify.v1.NotificationService ---------------------------------------------
    subscribe = unary(notify.SubscribeRequest, notify.SubscribeResponse)
    list_subscriptions = unary(notify.ListSubscriptionsRequest, notify.ListSubscriptionsResponse)
    change_contact = unary(notify.ChangeContactRequest, notify.ChangeContactResponse)
    publish_template = unary(notify.PublishTemplateRequest, notify.PublishTemplateResponse)
    send = unary(notify.SendRequest, notify.SendResponse)
    list_notifications = paged(notify.ListNotificationsRequest, notify.Notification)
    read_notification = unary(notify.ReadNotificationRequest, notify.ReadNotificationResponse)
    fetch_notifications = unary(notify.FetchNotificationsRequest, notify.FetchNotificationsResponse)
    stream_notifications = ItemsCall(notify_calls.stream_notifications)
    acknowledge_notifications = Call(notify_calls.acknowledge_notifications)
    open_link = unary(notify.OpenLinkRequest, notify.OpenLinkResponse)
    list_overdue = paged(notify.ListOverdueRequest, notify.Notification)

    # -- interops.relations.v1.RelationsService ----------------------------------------------
    list_declared_establishments = paged(
        relations.ListDeclaredEstablishmentsRequest, relations.DeclaredLink
    )
    check_declaration_link = unary(
        relations.CheckDeclarationLinkRequest, relations.CheckDeclarationLinkResponse
    )
    list_employees = paged(relations.ListEmployeesRequest, relations.Employment)
    check_employment = unary(relations.CheckEmploymentRequest, relations.CheckEmploymentResponse)
