"""Writes questions.jsonl (run from this folder: python3 tools/questions.py).

Each question: id, centre (the folder of its help centre), lang, kind, question, optional
history (the customer's earlier messages in the same conversation), expect (phrases of the
documents one of which the answer must contain; null when the documents do not answer and
the bot must abstain) or handoff (the customer asks for a person). Every third question of
ten (positions 2, 5 and 8) is held out: tune on `dev` only, report both.
"""
import json

N = None
Q = {
 "ledgerly": ("en", [
  ("paraphrase", "how long can I try it for free", ["21-day trial"]),
  ("paraphrase", "do i need to put in my credit card to start?", ["no card is needed"]),
  ("paraphrase", "what happens to my invoices if I dont pay after the trial ends", ["falls back to the free Solo tier"]),
  ("paraphrase", "price of the plan for a team of 3", ["€18 per month"]),
  ("paraphrase", "is it cheaper if I pay for the whole year upfront", ["saves two months"]),
  ("paraphrase", "can we pay by bank transfer instead of card", ["SEPA bank transfer"]),
  ("paraphrase", "do you charge vat to a german company that has a vat id", ["reverse-charge"]),
  ("paraphrase", "if I switch to a cheaper plan do I get money back for this month", ["nothing is refunded"]),
  ("paraphrase", "does the numbering skip a number when I delete an invoice?", ["gives its number back"]),
  ("paraphrase", "can my customers pay with ideal", ["iDEAL"]),
  ("paraphrase", "when do the automatic payment reminders go out", ["three days before the due date"]),
  ("paraphrase", "can I decide myself when reminders are sent", ["not the schedule"]),
  ("paraphrase", "I want invoices in french for my belgian customer", ["chosen per client"]),
  ("paraphrase", "which exchange rate do you use for foreign currency invoices", ["European Central Bank"]),
  ("paraphrase", "how do I get my receipts into the app", ["Forward any receipt"]),
  ("paraphrase", "how many years do you keep my receipts", ["ten years"]),
  ("paraphrase", "do you save my online banking password?", ["never see or store your online banking password"]),
  ("typo", "why does my bank conection keep expiring", ["every 180 days"]),
  ("typo", "my bank isnt in the list what can i do", ["CSV or OFX"]),
  ("paraphrase", "does my external accountant use up one of our seats", ["do not count towards the user limit"]),
  ("fragment", "where's my data hosted", ["Frankfurt"]),
  ("fragment", "payment link broken", ["creates a new version"]),
  ("paraphrase", "some card payments are missing from the bank feed", ["up to five business days"]),
  ("paraphrase", "I got locked out after trying my password a few times", ["fifteen minutes"]),
  ("followup", "how long will the download link keep working?", ["seven days"], ["how do I export everything for my accountant?"]),
  ("other-language", "Combien coûte l'offre Agency par mois ?", ["€49 per month"]),
  ("unanswerable", "can ledgerly mail printed invoices to my clients by post?", N),
  ("unanswerable", "do you integrate with QuickBooks?", N),
  ("unanswerable", "is there a discount for charities or nonprofits?", N),
  ("unanswerable", "can I accept payments in bitcoin", N),
  ("unanswerable", "what is your phone number for support", N),
  ("unanswerable", "does ledgerly run payroll for my employees", N),
  ("unanswerable", "how many invoice designs can I choose from", N),
  ("unanswerable", "can I send quotes or estimates before the invoice", N),
  ("handoff", "I want to speak to a human please", "handoff"),
 ]),
 "leafkettle": ("en", [
  ("paraphrase", "Can I send back tea I already opened?", ["Opened packets are fine"]),
  ("paraphrase", "how much is postage to france", ["£9.50"]),
  ("fragment", "free delivery uk minimum", ["free over £30"]),
  ("paraphrase", "is there an expiry date on gift vouchers", ["never expire"]),
  ("paraphrase", "i ordered an hour ago and need to change something, is it too late", ["until they are packed"]),
  ("paraphrase", "do you deliver to sydney australia", ["cannot ship to Australia"]),
  ("paraphrase", "will I have to pay customs fees when it arrives in germany", ["duties already paid"]),
  ("paraphrase", "my tracked parcel hasn't moved in two weeks", ["treat it as lost"]),
  ("paraphrase", "who pays for the postage when I send something back", ["Return postage is paid by you"]),
  ("paraphrase", "how long until the refund shows up", ["within five working days"]),
  ("paraphrase", "can i return an infuser i already used", ["only unused"]),
  ("paraphrase", "do the bags go in the recycling bin", ["not the recycling"]),
  ("paraphrase", "how long does loose tea stay fresh", ["eighteen months"]),
  ("paraphrase", "is your assam organic?", ["not all certified organic"]),
  ("paraphrase", "which of your teas have no caffeine at all", ["every rooibos and herbal blend"]),
  ("fragment", "coeliac - chai ok?", ["barley"]),
  ("fragment", "nut allergy", ["Almond Oolong"]),
  ("paraphrase", "how much tea should I use for one mug", ["2 g of leaves"]),
  ("typo", "what temprature for green tea", ["80 °C"]),
  ("paraphrase", "can I reuse the leaves for another pot", ["steeped a second time"]),
  ("fragment", "tea club how much", ["£12"]),
  ("followup", "how do I stop it?", ["cancel from your account at any time before the 20th"], ["tell me about the tea club subscription"]),
  ("paraphrase", "i run a cafe, can i buy your tea in bulk", ["1 kg bags"]),
  ("paraphrase", "what is the smallest order for a trade account", ["£150"]),
  ("other-language", "¿Hacen envíos a España? ¿Cuánto cuesta?", ["£9.50"]),
  ("unanswerable", "do you sell coffee beans too", N),
  ("unanswerable", "can I collect my order from your Bristol workshop", N),
  ("unanswerable", "is there a student discount", N),
  ("unanswerable", "can I get a sample pack before buying a full pouch", N),
  ("unanswerable", "how many mg of caffeine are in your breakfast tea", N),
  ("unanswerable", "do you have matcha powder", N),
  ("unanswerable", "do you offer gift wrapping with a message card", N),
  ("handoff", "I'd like to talk to a real person", "handoff"),
 ]),
 "comptoir": ("fr", [
  ("paraphrase", "vous êtes ouverts le lundi ?", ["fermé le dimanche et le lundi"]),
  ("fragment", "horaires du soir", ["19 h à 22 h 30"]),
  ("paraphrase", "vous fermez pendant les vacances d'été ?", ["trois semaines en août"]),
  ("paraphrase", "c'est accessible en fauteuil roulant ?", ["accessibles en fauteuil roulant"]),
  ("paraphrase", "on aura un quart d'heure de retard, vous gardez la table ?", ["quinze minutes"]),
  ("typo", "reservation pour 10 personnes il faut payer qqch ?", ["acompte de 20 € par personne"]),
  ("typo", "peut on reserver une table en terrasse", ["ne se réserve pas"]),
  ("fragment", "prix formule midi", ["19 €"]),
  ("paraphrase", "le menu dégustation coûte combien ?", ["52 €"]),
  ("paraphrase", "vous avez quelque chose pour les vegans ?", ["assiette végétalienne"]),
  ("fragment", "menu enfant", ["12 €"]),
  ("paraphrase", "je suis allergique aux noix, c'est risqué ?", ["fruits à coque"]),
  ("paraphrase", "les frites sont sans gluten ?", ["friteuse dédiée"]),
  ("paraphrase", "je peux venir avec ma propre bouteille de vin ?", ["droit de bouchon"]),
  ("paraphrase", "vous prenez les tickets resto ?", ["titres-restaurant"]),
  ("paraphrase", "on peut payer par chèque ?", ["chèques ne sont plus acceptés"]),
  ("paraphrase", "un bon cadeau est valable combien de temps ?", ["valables un an"]),
  ("paraphrase", "on voudrait privatiser pour un anniversaire de 30 personnes", ["vingt à quarante convives"]),
  ("paraphrase", "pour emporter le midi il faut commander avant quelle heure ?", ["avant 11 h 30"]),
  ("paraphrase", "vous faites la livraison à domicile ?", ["Nous ne livrons pas"]),
  ("paraphrase", "combien coûte un buffet pour une réunion de bureau ?", ["28 EUR par personne"]),
  ("followup", "il faut commander combien de jours avant ?", ["cinq jours"], ["vous faites traiteur pour des fêtes ?"]),
  ("other-language", "Do you have vegetarian dishes?", ["végétariens sont signalés"]),
  ("paraphrase", "où se garer près du restaurant ?", ["Terreaux"]),
  ("unanswerable", "vous proposez des cours de cuisine ?", N),
  ("unanswerable", "est-ce que les chiens sont acceptés ?", N),
  ("unanswerable", "il y a le wifi au restaurant ?", N),
  ("unanswerable", "vous avez une chaise haute pour bébé ?", N),
  ("unanswerable", "c'est quoi le plat du jour aujourd'hui ?", N),
  ("unanswerable", "vous recrutez des serveurs ?", N),
  ("unanswerable", "vous faites un brunch le samedi ?", N),
  ("handoff", "je voudrais parler à quelqu'un", "handoff"),
 ]),
 "azur": ("fr", [
  ("paraphrase", "combien faut-il verser pour réserver ?", ["acompte de 30 %"]),
  ("paraphrase", "quand est-ce que je dois payer le reste ?", ["35 jours avant le départ"]),
  ("typo", "je reserve a 3 semaines du depart, je paye quoi", ["totalité du prix est demandée immédiatement"]),
  ("fragment", "chèques vacances ok ?", ["ANCV"]),
  ("paraphrase", "vous êtes combien au maximum dans un groupe ?", ["maximum de seize"]),
  ("paraphrase", "que se passe-t-il si le groupe n'est pas complet ?", ["21 jours avant le départ"]),
  ("paraphrase", "il me faut quel passeport pour la Jordanie ?", ["six mois après la date de retour"]),
  ("fragment", "visa egypte", ["s'obtient à l'arrivée"]),
  ("paraphrase", "quand est-ce qu'on reçoit les billets ?", ["dix jours avant le départ"]),
  ("fragment", "poids max valise", ["23 kg"]),
  ("paraphrase", "le transfert depuis l'aéroport est compris ?", ["compris dans tous les circuits"]),
  ("paraphrase", "je peux partir de Genève ?", ["Belgique ou la Suisse"]),
  ("paraphrase", "l'assurance annulation coûte combien ?", ["4 % du prix"]),
  ("paraphrase", "si je change simplement d'avis, l'assurance me rembourse ?", ["simple changement d'avis"]),
  ("fragment", "pourboires ?", ["4 € par jour"]),
  ("paraphrase", "je voyage seule, je peux avoir une chambre pour moi ?", ["supplément"]),
  ("paraphrase", "si j'annule 20 jours avant le départ je perds combien ?", ["60 %"]),
  ("paraphrase", "on peut changer le nom d'un des voyageurs ?", ["50 EUR de frais de dossier"]),
  ("paraphrase", "vous remboursez si le voyage est annulé pour des raisons de sécurité ?", ["remboursées en totalité"]),
  ("paraphrase", "j'ai combien de temps pour faire une réclamation ?", ["30 jours suivant le retour"]),
  ("paraphrase", "à qui m'adresser si vous ne répondez pas à ma réclamation ?", ["Médiateur du Tourisme et du Voyage"]),
  ("paraphrase", "vous êtes joignables le samedi ?", ["samedi matin de 9 h à 12 h"]),
  ("followup", "et l'assurance annulation, elle est incluse aussi ?", ["facultative"], ["l'assistance rapatriement est incluse ?"]),
  ("other-language", "Do I need a passport to travel to Turkey with you?", ["passeport valable"]),
  ("unanswerable", "vous organisez aussi des croisières ?", N),
  ("unanswerable", "le vol pour Amman est-il direct ?", N),
  ("unanswerable", "y a-t-il des réductions pour les enfants ?", N),
  ("unanswerable", "peut-on payer en plusieurs fois sans frais ?", N),
  ("unanswerable", "quel temps fait-il en Jordanie en avril ?", N),
  ("unanswerable", "les repas sont-ils inclus dans les circuits ?", N),
  ("unanswerable", "avez-vous une agence à Paris ?", N),
  ("handoff", "je veux parler à un conseiller", "handoff"),
 ]),
}

out = []
for centre, (lang, items) in Q.items():
    for i, item in enumerate(items):
        kind, question, expect = item[0], item[1], item[2]
        history = item[3] if len(item) > 3 else None
        record = {
            "id": f"{centre}-{i + 1:02}",
            "centre": centre,
            "lang": lang if kind != "other-language" else ("fr" if lang == "en" else "en"),
            "split": "holdout" if i % 10 in (2, 5, 8) else "dev",
            "kind": kind,
            "question": question,
        }
        if history:
            record["history"] = history
        if expect == "handoff":
            record["handoff"] = True
        else:
            record["expect"] = expect
        out.append(record)

with open("questions.jsonl", "w", encoding="utf-8") as f:
    for r in out:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
n = len(out)
unans = sum(1 for r in out if r.get("expect", 0) is None)
print(n, "questions,", unans, f"unanswerable ({unans / n:.0%}),",
      sum(r["split"] == "holdout" for r in out), "held out")
