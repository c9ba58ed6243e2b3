-- A data-subject request is answered within 30 days (privacy policy section 7): an open
-- request past its due date is a promise broken. One row per request.
select 'dsr_overdue' as "check", 'error' as level,
       'data-subject request ' || d.id::text as object,
       d.kind || ' request opened ' || d.opened_at::text || ', due ' || d.due_at::text
           || ', still open' as detail,
       'provision dsr list --stack <stack> --overdue; answer it (dsr export / dsr erase) and close it' as remediation
from platform.dsr_requests d
where d.closed_at is null and d.due_at < now()
order by d.due_at;
