"""Small template lists for the demo: subjects and message bodies per request type.

Placeholders: ``{first}`` (customer's first name), ``{agent}`` (agent's first name),
``{ref}`` (an account, order or meter reference) and ``{amount}`` (a sum in pounds).
"""

from __future__ import annotations

from typing import Final

SUBJECTS: Final[dict[str, tuple[str, ...]]] = {
    "account_access": (
        "Cannot log in to my account",
        "Password reset link does not arrive",
        "Locked out of the Lumen app",
        "Two-factor code never comes",
    ),
    "move_home": (
        "Moving house next month",
        "New address from the 1st",
        "Please move my supply to my new home",
        "Final reading for my old address",
    ),
    "bill_explanation": (
        "Why is my bill so high?",
        "Question about my latest bill",
        "Charges on my statement I do not understand",
        "Estimated bill instead of my reading",
    ),
    "refund": (
        "Refund for overpayment",
        "Where is my refund?",
        "Credit balance refund request",
        "Refund for cancelled order {ref}",
    ),
    "payment_plan": (
        "Struggling to pay my bill",
        "Can I pay in instalments?",
        "Payment plan request",
        "Direct debit too high, need help",
    ),
    "device_fault": (
        "Heat pump not heating",
        "Thermostat shows error E{ref}",
        "No hot water since yesterday",
        "Heat pump making a loud noise",
    ),
    "smart_meter_fault": (
        "Smart meter not sending readings",
        "In-home display blank",
        "Meter says no signal",
        "Smart meter stopped working",
    ),
    "meter_reading_dispute": (
        "Meter reading is wrong",
        "Disputing the reading on my bill",
        "Reading much higher than my meter shows",
        "Incorrect meter reading",
    ),
    "delivery_problem": (
        "Thermostat delivery has not arrived",
        "Order {ref} missing",
        "Parcel delivered damaged",
        "Courier did not turn up",
    ),
    "return_device": (
        "Return my smart thermostat",
        "How do I send back order {ref}?",
        "Return label request",
        "Device not wanted, want to return",
    ),
    "complaint": (
        "Formal complaint",
        "Complaint about how my case was handled",
        "I want to make a complaint",
        "Unacceptable service, complaint",
    ),
    "vip_request": (
        "Priority support request",
        "Please call me back about my account",
        "Support needed for elderly relative",
        "Medical equipment at home, need help",
    ),
}

OPENINGS: Final[dict[str, tuple[str, ...]]] = {
    "account_access": (
        "Hi, I have tried to log in three times and the app says my password is wrong. "
        "I reset it yesterday. Can you help? {first}",
        "The reset e-mail never arrives, I checked my spam folder too. Account {ref}.",
        "My account got locked after I changed phones. Please unlock it.",
    ),
    "move_home": (
        "We are moving on the 28th. Can you move our supply to the new address? {first}",
        "I have moved out of my flat. Final reading today is {ref}. Please close the account "
        "there and set up the new one.",
        "Moving home soon, what do you need from me?",
    ),
    "bill_explanation": (
        "My bill this month is {amount} pounds, nearly double last month. Nothing changed "
        "at home. Please explain.",
        "There is a standing charge on my bill I do not recognise. Account {ref}.",
        "You estimated my usage although I sent a reading. Can you correct the bill?",
    ),
    "refund": (
        "My account is {amount} pounds in credit. Please refund it to my bank account.",
        "I was promised a refund two weeks ago and nothing has arrived. Account {ref}.",
        "I cancelled order {ref} and still have not received my money back.",
    ),
    "payment_plan": (
        "I lost my job last month and cannot pay the full bill. Can we agree a plan?",
        "My direct debit went up to {amount} pounds and I cannot afford it.",
        "I am behind on my payments and worried. What can I do?",
    ),
    "device_fault": (
        "Our heat pump stopped heating last night. The display shows a fault code. {first}",
        "The thermostat keeps losing connection and the house is cold.",
        "Heat pump is running but radiators stay cold. We have a baby at home.",
    ),
    "smart_meter_fault": (
        "My smart meter has not sent a reading for weeks, the display says no signal.",
        "The in-home display is blank. Meter number {ref}.",
        "You keep estimating my bills because the smart meter does not communicate.",
    ),
    "meter_reading_dispute": (
        "The reading on my bill is {ref} but my meter shows much less. Please correct it.",
        "I dispute the last reading, it cannot be right.",
        "Your reading is higher than what my meter shows today. Photo available.",
    ),
    "delivery_problem": (
        "Order {ref} was due on Tuesday and has not arrived.",
        "The parcel arrived with the box crushed and the thermostat is cracked.",
        "Tracking says delivered but nothing is here.",
    ),
    "return_device": (
        "I would like to return the smart thermostat from order {ref}, it does not fit.",
        "Please send me a return label for my order.",
        "The device does not work with my boiler, I want to send it back.",
    ),
    "complaint": (
        "I have contacted you four times about the same problem and nobody resolved it. "
        "I want to make a formal complaint.",
        "I was passed between departments and had to explain everything again. Complaint.",
        "Your engineer did not turn up twice. I expect compensation.",
    ),
    "vip_request": (
        "I rely on powered medical equipment at home. Please make sure my supply is safe.",
        "My mother is 89 and her heating is not working. Please call me.",
        "Priority customer, please call me back today about my account {ref}.",
    ),
}

ASK_INFO: Final[dict[str, tuple[str, ...]]] = {
    "account_access": (
        "Hi {first}, to verify your identity please confirm your date of birth and the "
        "postcode on the account. {agent}",
    ),
    "move_home": (
        "Hi {first}, please send us the move date and meter readings at both addresses. {agent}",
    ),
    "bill_explanation": (
        "Hi {first}, could you send a current meter reading so we can check the bill? {agent}",
    ),
    "refund": ("Hi {first}, please confirm the bank account the refund should go to. {agent}",),
    "payment_plan": (
        "Hi {first}, thank you for telling us. Could you share your monthly income and "
        "outgoings so we can agree an affordable plan? {agent}",
    ),
    "device_fault": (
        "Hi {first}, please send the fault code on the display and a photo of the unit. {agent}",
    ),
    "smart_meter_fault": (
        "Hi {first}, please press the A button on the meter and tell us what it shows. {agent}",
    ),
    "meter_reading_dispute": (
        "Hi {first}, please send a photo of your meter with today's reading. {agent}",
    ),
    "delivery_problem": (
        "Hi {first}, could you confirm the delivery address and a safe place for the "
        "parcel? {agent}",
    ),
    "return_device": ("Hi {first}, please confirm the device is in its original box. {agent}",),
    "complaint": (
        "Hi {first}, I am sorry about your experience. Could you tell us when you contacted "
        "us before and who you spoke to? {agent}",
    ),
    "vip_request": ("Hi {first}, when is a good time for us to call you today? {agent}",),
}

CUSTOMER_REPLIES: Final[tuple[str, ...]] = (
    "Here is the information you asked for. Thanks.",
    "Done, see attached.",
    "Sorry for the delay. The details are below.",
    "Thanks, that is what you needed I think?",
    "Reading today is {ref}. Photo attached.",
)

SOLUTIONS: Final[dict[str, tuple[str, ...]]] = {
    "account_access": (
        "Hi {first}, I have unlocked your account and sent a new reset link. You should be "
        "able to log in now. {agent}",
    ),
    "move_home": (
        "Hi {first}, your supply moves on the date you gave; the final bill for your old "
        "address follows within two weeks. {agent}",
    ),
    "bill_explanation": (
        "Hi {first}, the bill was based on an estimate. I have used your reading and "
        "reissued it; the new amount is {amount} pounds. {agent}",
        "Hi {first}, the increase is the winter usage plus the new unit rate. I have added "
        "a breakdown to your account. {agent}",
    ),
    "refund": (
        "Hi {first}, your refund of {amount} pounds is on its way and should arrive in "
        "3-5 working days. {agent}",
    ),
    "payment_plan": (
        "Hi {first}, we have agreed a plan of {amount} pounds a month and set up the direct "
        "debit. A letter confirming it is on its way. {agent}",
    ),
    "device_fault": (
        "Hi {first}, the remote reset fixed the fault; the heat pump is running normally "
        "again. {agent}",
        "Hi {first}, the engineer replaced the faulty sensor. Let us know if anything is "
        "still wrong. {agent}",
    ),
    "smart_meter_fault": (
        "Hi {first}, we reset the meter remotely and readings arrive again. {agent}",
    ),
    "meter_reading_dispute": (
        "Hi {first}, thanks for the photo. We corrected the reading and rebilled your "
        "account. {agent}",
        "Hi {first}, the reading on your bill matches the meter history; here is how it "
        "was calculated. {agent}",
    ),
    "delivery_problem": (
        "Hi {first}, we have reshipped your order with next-day delivery. {agent}",
        "Hi {first}, the carrier found your parcel; it will be delivered tomorrow. {agent}",
    ),
    "return_device": (
        "Hi {first}, the return label is attached; the refund follows once we receive the "
        "device. {agent}",
    ),
    "complaint": (
        "Hi {first}, we have investigated your complaint, apologise and applied the "
        "resolution described below. {agent}",
    ),
    "vip_request": (
        "Hi {first}, as discussed on the phone everything is arranged. We will call again "
        "next week to check in. {agent}",
    ),
}

HOLD_NOTES: Final[dict[str, str]] = {
    "device_fault": "Engineer visit booked; waiting for the visit report.",
    "smart_meter_fault": "Meter engineer booked; waiting for the field visit.",
    "delivery_problem": "Carrier investigation opened; waiting for their answer.",
    "return_device": "Return label issued; waiting for the device to arrive and be inspected.",
    "complaint": "Root cause investigation with the teams involved.",
    "move_home": "Waiting for the network operator to confirm the switch date.",
    "refund": "Refund queued for the next finance run.",
    "bill_explanation": "Asked metering data team to validate the readings.",
}

HOLD_TAGS: Final[dict[str, str]] = {
    "device_fault": "engineer_visit",
    "smart_meter_fault": "engineer_visit",
    "delivery_problem": "carrier_claim",
    "return_device": "return_in_transit",
    "complaint": "investigation",
    "move_home": "switch_pending",
    "refund": "finance_run",
    "bill_explanation": "reading_check",
}

REOPEN_MESSAGES: Final[tuple[str, ...]] = (
    "It is still not working, sorry.",
    "This is not resolved. Same problem as before.",
    "I checked again and the issue is back.",
    "The amount is still wrong on my account.",
)

REPEAT_OPENINGS: Final[tuple[str, ...]] = (
    "I contacted you about this a few days ago and it is happening again.",
    "Following up on my earlier request, still the same problem.",
    "Second time I write about this. Please help.",
)

REMINDERS: Final[tuple[str, ...]] = (
    "Reminder: we are still waiting for your reply. If we do not hear back we will close "
    "this request in three days.",
)

NO_REPLY_SOLVE: Final[str] = (
    "We have not heard back, so we are closing this request. Reply any time to reopen it."
)

TRANSFER_REASONS: Final[dict[str, tuple[str, ...]]] = {
    "misroute": (
        "Wrong queue: this is a {type} question for {team}.",
        "Misrouted at intake; {team} owns {type}.",
    ),
    "pingpong_out": (
        "Needs a check by {team} before we can continue.",
        "Asking {team} to verify the data first.",
    ),
    "pingpong_back": (
        "Checked on our side, nothing wrong here; back to {team}.",
        "Verified; {team} owns the resolution.",
    ),
    "escalate": (
        "Bounced between teams {n} times; escalated to complaints per the complaint risk path.",
    ),
    "handover": ("Handover: owner off shift, customer waiting.",),
}

EXCEPTION_REASONS: Final[dict[str, tuple[str, ...]]] = {
    "refund_outside_policy": (
        "Customer asks for a refund of {amount} pounds outside the 30-day window; long-time "
        "customer with a faulty device.",
        "Refund requested after the policy period because of our delivery delay.",
    ),
    "priority_jump": (
        "No heating and a vulnerable person in the household; needs an urgent engineer slot.",
        "Customer without hot water for three days; asking to jump the queue.",
    ),
    "routing_override": (
        "Customer mid-conversation on chat; keep the ticket with frontline instead of "
        "transferring.",
    ),
    "goodwill_credit": (
        "Goodwill credit of {amount} pounds for repeated failed engineer visits.",
        "Goodwill credit for the billing error and the time the customer lost.",
    ),
    "extended_return_window": (
        "Customer was in hospital during the return window; asks for two more weeks.",
    ),
}

DECISION_NOTES: Final[dict[bool, tuple[str, ...]]] = {
    True: ("Approved.", "Approved, document it on the account.", "OK given the history."),
    False: (
        "Denied: outside what policy allows.",
        "Denied: no grounds for an exception here.",
        "Denied, offer the standard option instead.",
    ),
}

DENIED_REPLIES: Final[tuple[str, ...]] = (
    "Hi {first}, I am sorry, we could not make an exception in this case. Here is what we "
    "can offer instead. {agent}",
)

CSAT_COMMENTS: Final[dict[int, tuple[str, ...]]] = {
    1: ("Terrible, I was passed around.", "Still not fixed.", ""),
    2: ("Took far too long.", "Had to repeat myself.", ""),
    3: ("OK in the end.", ""),
    4: ("Helpful, thanks.", ""),
    5: ("Great service, thank you!", "Quick and friendly.", ""),
}
